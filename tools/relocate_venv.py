"""Make the project's virtualenv follow the project folder when it is moved or copied.

A virtualenv records its own absolute path: the `#!` line of every console script
(`athlete-platform`, `pytest`, `airflow` ...), the activate scripts, and the editable install's
`.pth` file that points at `src/`. After `mv project elsewhere`, those still name the old place
(and, after a copy, silently run the OLD checkout's code). `make setup` runs this first: it
remembers where the venv was made in `<venv>/.location` and, when that is not where it is now,
rewrites the old prefix to the new one in those files. Nothing is downloaded, so a moved
checkout works offline.

usage: python tools/relocate_venv.py .venv        (prints what it rewrote, if anything)
"""

from __future__ import annotations

import sys
from pathlib import Path

MARKER = ".location"


def text_files(venv: Path) -> list[Path]:
    """The venv files that may hold its absolute path."""
    bin_dir = venv / "bin"
    scripts = [p for p in bin_dir.iterdir() if p.is_file() and not p.is_symlink()] if bin_dir.is_dir() else []
    site = list(venv.glob("lib/python*/site-packages"))
    pth = [p for folder in site for p in folder.glob("*.pth")]
    direct = [p for folder in site for p in folder.glob("*.dist-info/direct_url.json")]
    return [*scripts, *pth, *direct, venv / "pyvenv.cfg"]


def rewrite_file(path: Path, old: str, new: str) -> bool:
    """Replace `old` by `new` where it is a whole path prefix; False for binaries or no match."""
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return False
    changed = text
    for end in ("/", "\n", '"', "'", " ", ":"):
        changed = changed.replace(old + end, new + end)
    if changed.endswith(old):
        changed = changed[: -len(old)] + new
    if changed == text:
        return False
    path.write_text(_runnable_shebang(changed))
    return True


TRAMPOLINE = "#!/bin/sh\n'''exec' \"{interpreter}\" \"$0\" \"$@\"\n' '''\n"


def _runnable_shebang(text: str) -> str:
    """A `#!` line cannot hold a path with a space (the kernel splits it): use the /bin/sh
    trampoline pip writes in that case, which runs the same interpreter on the same file."""
    first, _, rest = text.partition("\n")
    interpreter = first[2:]
    if not first.startswith("#!") or not any(c.isspace() for c in interpreter):
        return text
    return TRAMPOLINE.format(interpreter=interpreter) + rest


def relocate(venv: Path) -> list[Path]:
    """Rewrite the venv for where it is now; returns the files it changed (none when unmoved)."""
    venv = venv.resolve()
    project = venv.parent
    marker = venv / MARKER
    if not marker.is_file():  # a venv made before this tool: it was made here, or its scripts say where
        old_venv = _venv_named_by_scripts(venv)
        if old_venv is None:
            marker.write_text(str(venv))
            return []
    else:
        old_venv = Path(marker.read_text().strip())
    if old_venv == venv:
        return []
    old_project = old_venv.parent
    changed = [p for p in text_files(venv) if rewrite_file(p, str(old_project), str(project))]
    marker.write_text(str(venv))
    return changed


def _venv_named_by_scripts(venv: Path) -> Path | None:
    """The venv path in the `#!` line of its pip script (how an unmarked venv says where it was made)."""
    for name in ("pip", "pip3"):
        script = venv / "bin" / name
        if script.is_file():
            first = script.read_text().splitlines()[0]
            if first.startswith("#!") and "/bin/python" in first:
                return Path(first[2:].split("/bin/python")[0])
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    venv = Path(argv[0])
    if not (venv / "pyvenv.cfg").is_file():
        return 0  # no venv yet: `make setup` creates it where it is
    changed = relocate(venv)
    if changed:
        print(f"The project folder moved: {len(changed)} files of {venv} now name {venv.resolve()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
