"""Issue 10 item 10: a moved project folder keeps working. The pure prefix rules, the venv
tool on a real (tiny) virtualenv, and the MLflow store on a real MLflow SQLite store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from tools.relocate_venv import relocate

from athlete_platform.lakehouse.relocation import (
    catalog_statements,
    moved_prefix,
    relocate_mlflow_store,
    rewrite,
    warehouse_uri,
)


def test_rewrite_replaces_only_a_whole_folder_prefix():
    assert rewrite("/a/data/warehouse/t", "/a/data", "/b/data") == "/b/data/warehouse/t"
    assert rewrite("/a/data", "/a/data", "/b/data") == "/b/data"
    assert rewrite("/a/data2/warehouse", "/a/data", "/b/data") == "/a/data2/warehouse"  # a sibling folder
    assert rewrite("/x/a/data/w", "/a/data", "/b/data") == "/x/a/data/w"


def test_moved_prefix():
    assert moved_prefix(None, "file:/b/w") is None
    assert moved_prefix("file:/b/w/", "file:/b/w") is None
    assert moved_prefix("file:/a/w", "file:/b/w") == "file:/a/w"


def test_catalog_statements_guard_sibling_folders_and_quote():
    statements = catalog_statements("file:/a/it's/warehouse", "file:/b/warehouse")
    assert len(statements) == 3
    for sql in statements:
        assert "'file:/a/it''s/warehouse/'" in sql  # a prefix only when followed by '/'
        assert "SUBSTR(" in sql and str(len("file:/a/it's/warehouse") + 1) in sql
    assert "PARAM_KEY = 'path'" in statements[2]


def test_warehouse_uri_is_read_from_ij_output():
    output = "ij> SELECT ...;\n1\n-----\nfile:/a/data/warehouse   \n\n1 row selected\n"
    assert warehouse_uri(output) == "file:/a/data/warehouse"
    assert warehouse_uri("0 rows selected") is None


def _script(venv_dir: Path, name: str, body: str) -> Path:
    script = venv_dir / "bin" / name
    script.write_text(f"#!{venv_dir}/bin/python\n{body}\n")
    script.chmod(0o755)
    return script


def test_a_moved_virtualenv_runs_its_scripts_and_the_new_checkout(tmp_path):
    old = tmp_path / "old" / "project"
    (old / "src" / "probe").mkdir(parents=True)
    (old / "src" / "probe" / "__init__.py").write_text("WHERE = __file__\n")
    venv.EnvBuilder(symlinks=True, with_pip=False).create(old / ".venv")
    site = next((old / ".venv").glob("lib/python*/site-packages"))
    (site / "__editable__.probe-0.1.pth").write_text(f"{old / 'src'}\n")
    _script(old / ".venv", "probe", "import probe; print(probe.WHERE)")
    assert relocate(old / ".venv") == []  # made here: recorded, nothing to rewrite
    assert (old / ".venv" / ".location").read_text() == str(old / ".venv")

    new = tmp_path / "new place" / "project"
    new.parent.mkdir()
    old.rename(new)
    changed = relocate(new / ".venv")
    assert {p.name for p in changed} >= {"probe", "__editable__.probe-0.1.pth", "pyvenv.cfg"}
    ran = subprocess.run([str(new / ".venv" / "bin" / "probe")], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == str(new / "src" / "probe" / "__init__.py")
    assert relocate(new / ".venv") == []  # idempotent


def test_the_tool_runs_as_make_calls_it(tmp_path):
    # No venv yet: nothing to do, exit 0 (make setup then creates one).
    done = subprocess.run([sys.executable, "tools/relocate_venv.py", str(tmp_path / ".venv")], capture_output=True)
    assert done.returncode == 0


@pytest.fixture()
def mlflow_store(tmp_path):
    """A real MLflow SQLite store with an experiment, a run and a registered model version."""
    import mlflow
    import mlflow.pyfunc

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return [1.0] * len(model_input)

    data = tmp_path / "old" / "data" / "mlflow"
    data.mkdir(parents=True)
    mlflow.set_tracking_uri(f"sqlite:///{data / 'mlflow.db'}")
    try:
        mlflow.create_experiment("exp", artifact_location=(data / "artifacts").as_uri())
        mlflow.set_experiment("exp")
        with mlflow.start_run():
            mlflow.pyfunc.log_model(name="model", python_model=Constant(), registered_model_name="m")
    finally:
        mlflow.set_tracking_uri(None)
    return tmp_path, data


def test_a_moved_mlflow_store_loads_its_model_from_the_new_place(mlflow_store):
    import mlflow

    tmp_path, old = mlflow_store
    new = tmp_path / "new" / "data" / "mlflow"
    new.parent.mkdir(parents=True)
    old.rename(new)
    (tmp_path / "old").rename(tmp_path / "gone")  # nothing may be read from the old place
    assert relocate_mlflow_store(new / "mlflow.db", new / "artifacts") == (old / "artifacts").as_uri()
    assert relocate_mlflow_store(new / "mlflow.db", new / "artifacts") is None  # idempotent
    mlflow.set_tracking_uri(f"sqlite:///{new / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model("models:/m/1")
        assert list(model.predict([[0.0], [0.0]])) == [1.0, 1.0]
    finally:
        mlflow.set_tracking_uri(None)
    # No path under the old folder is left in any table or MLmodel file.
    old_text = str(tmp_path / "old")
    with sqlite3.connect(new / "mlflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in db.execute(f"SELECT * FROM {table}"):
                assert not any(isinstance(v, str) and old_text in v for v in row), (table, row)
    assert not any(old_text in p.read_text() for p in new.rglob("MLmodel"))
