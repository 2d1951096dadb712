"""The import graph of `athlete_platform`, checked: a module imports only from its own layer or below.

Layers (low to high): the lakehouse plumbing, settings and errors; the pure domain rules;
ingestion; features; training and the online store; inference, reporting and monitoring; the
assistant; serving; the step registry and orchestration; the CLI. An import that goes up a layer
is an error, wherever it is: at module level, inside a function, or under `if TYPE_CHECKING`.
Dynamic imports count too: `importlib.import_module("athlete_platform.x")` with a literal name,
and the step registry's `"athlete_platform.x.y:Class"` references (resolved by import_module).
A top-level package with no layer is an error, so a new package has to be placed here first.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT_PACKAGE = "athlete_platform"
SRC = Path(__file__).resolve().parents[2] / "src" / ROOT_PACKAGE

LAYERS: dict[str, int] = {
    "lakehouse": 0,
    "config": 0,
    "errors": 0,
    "domain": 1,
    "ingestion": 2,
    "features": 3,
    "training": 4,
    "online": 4,
    "inference": 5,
    "reporting": 5,
    "monitoring": 5,
    "assistant": 6,
    "serving": 7,
    "steps": 8,
    "orchestration": 8,
    "cli": 9,
}
ROOT_LAYER = 0  # athlete_platform/__init__.py itself: imported by every module, so it imports nothing up

_REFERENCE = re.compile(rf"{ROOT_PACKAGE}(?:\.\w+)+:\w+")  # "athlete_platform.x.y:Name"
_IMPORT_FUNCTIONS = {"import_module", "__import__"}


@dataclass(frozen=True)
class Import:
    source: str  # dotted module that imports
    line: int
    target: str  # dotted module imported

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([src.name, *parts])


def top_package(module: str) -> str | None:
    """`athlete_platform.features.rolling` -> `features`; the root package itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_of(module: str) -> int | None:
    package = top_package(module)
    return ROOT_LAYER if package is None else LAYERS.get(package)


def _is_submodule(src: Path, dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (src / relative).is_dir() or (src / relative).with_suffix(".py").is_file()


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_in(path: Path, src: Path) -> list[Import]:
    """Every import of the root package anywhere in one file (module level, functions, TYPE_CHECKING)."""
    module = module_name(path, src)
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str, line: int) -> None:
        if target == src.name or target.startswith(src.name + "."):
            found.append(Import(module, line, target))

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, module, is_package)
            if base is None:
                continue
            for alias in node.names:
                # `from athlete_platform import steps` imports the module `steps`.
                candidate = f"{base}.{alias.name}"
                add(candidate if _is_submodule(src, candidate) else base, node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0] if node.args else None
            if name in _IMPORT_FUNCTIONS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                add(first.value, node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _REFERENCE.fullmatch(node.value):
            add(node.value.partition(":")[0], node.lineno)
    return found


def modules(src: Path) -> list[Path]:
    return sorted(src.rglob("*.py"))


def unplaced_packages(src: Path) -> list[str]:
    """Top-level packages (or modules) of the tree, and import targets, that have no layer."""
    names = {top_package(module_name(p, src)) for p in modules(src)}
    names |= {top_package(i.target) for p in modules(src) for i in imports_in(p, src)}
    return sorted(n for n in names if n is not None and n not in LAYERS)


def upward_imports(src: Path) -> list[Import]:
    bad = []
    for path in modules(src):
        for imp in imports_in(path, src):
            source, target = layer_of(imp.source), layer_of(imp.target)
            if source is not None and target is not None and target > source:
                bad.append(imp)
    return bad


def _describe(imports: list[Import]) -> str:
    return "\n".join(f"  {i}  (layer {layer_of(i.source)} -> layer {layer_of(i.target)})" for i in imports)


# --- the project's tree -------------------------------------------------------------------


def test_every_top_level_package_has_a_layer():
    unplaced = unplaced_packages(SRC)
    assert not unplaced, f"place these in LAYERS of {Path(__file__).name}: {unplaced}"


def test_no_import_goes_up_a_layer():
    bad = upward_imports(SRC)
    assert not bad, "imports from a higher layer:\n" + _describe(bad)


def test_the_walk_sees_the_whole_tree():
    """Guard against a vacuous pass: the walk must find the modules and their imports."""
    found = {module_name(p, SRC) for p in modules(SRC)}
    assert {"athlete_platform.cli", "athlete_platform.lakehouse.tables", "athlete_platform.features.rolling"} <= found
    edges = {(i.source, i.target) for p in modules(SRC) for i in imports_in(p, SRC)}
    assert ("athlete_platform.lakehouse.ddl", "athlete_platform.lakehouse.tables") in edges
    assert ("athlete_platform.cli", "athlete_platform.steps") in edges  # `from athlete_platform import steps`
    assert ("athlete_platform.steps", "athlete_platform.features.pipeline") in edges  # registry reference


# --- the checker itself, on a tree written here --------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / ROOT_PACKAGE
    for relative, text in {"__init__.py": "", **files}.items():
        path = src / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_checker_finds_upward_imports_wherever_they_are(tmp_path):
    src = _tree(
        tmp_path,
        {
            "domain/__init__.py": "",
            "domain/rules.py": (
                "from typing import TYPE_CHECKING\n"
                "import athlete_platform.errors\n"  # down: fine
                "from athlete_platform.features import rolling\n"  # up, module level
                "if TYPE_CHECKING:\n"
                "    from athlete_platform.training.pipeline import Split\n"  # up, TYPE_CHECKING
                "def f():\n"
                "    import athlete_platform.cli\n"  # up, in a function
                "    from ..inference import batch\n"  # up, relative
                "    from . import physiology\n"  # same package
            ),
            "domain/physiology.py": "",
            "features/__init__.py": "",
            "inference/__init__.py": "",
            "inference/batch.py": "",
            "features/rolling.py": "from athlete_platform import domain, cli\n",  # down, then up
            "lakehouse/__init__.py": "",
            "lakehouse/sql.py": (
                "import importlib\n"
                "importlib.import_module('athlete_platform.reporting.html')\n"
                "STEP = 'athlete_platform.steps:Registry'\n"
                "NOT_A_MODULE = 'athlete_platform.source.version'\n"
            ),
            "cli.py": "from athlete_platform.features.rolling import x\nfrom athlete_platform import __version__\n",
        },
    )
    found = {(i.source, i.line, i.target) for i in upward_imports(src)}
    assert found == {
        ("athlete_platform.domain.rules", 3, "athlete_platform.features.rolling"),
        ("athlete_platform.domain.rules", 5, "athlete_platform.training.pipeline"),
        ("athlete_platform.domain.rules", 7, "athlete_platform.cli"),
        ("athlete_platform.domain.rules", 8, "athlete_platform.inference.batch"),
        ("athlete_platform.features.rolling", 1, "athlete_platform.cli"),
        ("athlete_platform.lakehouse.sql", 2, "athlete_platform.reporting.html"),
        ("athlete_platform.lakehouse.sql", 3, "athlete_platform.steps"),
    }
    assert unplaced_packages(src) == []


def test_checker_names_a_package_without_a_layer(tmp_path):
    src = _tree(
        tmp_path,
        {
            "widgets/__init__.py": "",
            "widgets/gauge.py": "",
            "scratch.py": "",
            "cli.py": "import athlete_platform.gadgets.knob\n",  # an import target with no layer
        },
    )
    assert unplaced_packages(src) == ["gadgets", "scratch", "widgets"]


def test_root_package_may_not_import_a_layer(tmp_path):
    src = _tree(tmp_path, {"__init__.py": "from athlete_platform.cli import main\n", "cli.py": ""})
    assert [str(i) for i in upward_imports(src)] == ["athlete_platform:1 imports athlete_platform.cli"]


@pytest.mark.parametrize(("package", "layer"), [("lakehouse", 0), ("domain", 1), ("serving", 7), ("cli", 9)])
def test_layer_of(package, layer):
    assert layer_of(f"{ROOT_PACKAGE}.{package}.x") == layer
