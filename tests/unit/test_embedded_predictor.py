"""The embedded predictor: export folder, compiled trees vs XGBoost, fallback, errors, no Spark/MLflow.

A small XGBoost model (30 trees) trained here on random data shaped like the time estimator's
inputs keeps the compile to a second or two. One test goes through a real MLflow registry
(temporary SQLite store) and the `athlete-platform export-model` command.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from athlete_platform.errors import InvalidRequest, PlatformError
from athlete_platform.features import model_inputs as mi
from athlete_platform.inference import embedded, export, tree_compiler
from athlete_platform.inference.embedded import EmbeddedPredictor

HOME = Path(__file__).resolve().parents[2]
SIGNATURE = {
    "inputs": [{"type": "double", "name": name, "required": True} for name in mi.MODEL_INPUTS],
    "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1]}}],
}
IDENTITY = {"model": "time_estimator", "registered_model": "t.ml.time_estimator", "version": "7", "alias": "champion"}


def random_inputs(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, len(mi.MODEL_INPUTS)))
    values[rng.random(values.shape) < 0.15] = np.nan
    return values


@pytest.fixture(scope="module")
def booster_file(tmp_path_factory) -> Path:
    import xgboost as xgb

    x = random_inputs(1500, seed=1)
    y = 0.05 * np.nansum(x[:, :8], axis=1) + 0.01 * np.random.default_rng(2).normal(size=len(x))
    data = xgb.DMatrix(x, y, feature_names=list(mi.MODEL_INPUTS), missing=np.nan)
    booster = xgb.train({"max_depth": 4, "eta": 0.1, "nthread": 1, "seed": 0}, data, num_boost_round=30)
    path = tmp_path_factory.mktemp("model") / "model.ubj"
    booster.save_model(path)
    return path


@pytest.fixture(scope="module")
def booster(booster_file):
    import xgboost as xgb

    loaded = xgb.Booster()
    loaded.load_model(str(booster_file))
    return loaded


def export_to(out: Path, model_file: Path, scratch: Path) -> dict:
    scratch.mkdir(parents=True, exist_ok=True)
    examples = random_inputs(3, seed=3)
    return export.write_folder(out, model_file, SIGNATURE, examples, {**IDENTITY, "run_id": "r1"}, scratch)


@pytest.fixture(scope="module")
def compiled_export(booster_file, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("compiled")
    export_to(base / "export", booster_file, base / "scratch")
    return base / "export"


@pytest.fixture(scope="module")
def fallback_export(booster_file, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("fallback")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CC", "/nonexistent/cc")
        export_to(base / "export", booster_file, base / "scratch")
    return base / "export"


def request_inputs(vdot: float = 48.2) -> dict:
    """An online-store row (STORED_INPUTS) plus a request, as a serving caller would pass them."""
    row = {name: float(i + 1) for i, name in enumerate(mi.STORED_INPUTS)}
    row.update(
        sex="F",
        birth_date="1988-03-14",
        prev_race_date="2024-11-02",
        prev_distance_m=10000.0,
        prev_finish_time_s=2580.0,
        vdot_best_90d=vdot,
        avg_pace_28d_s_per_km=318.0,
        acwr_rolling=None,
        feature_date="2024-12-30",
    )
    return {**row, "race_distance_m": 21097.5}


def batch_prediction(booster, inputs: dict) -> float:
    """What batch scoring computes for the same values: model_inputs on a frame -> inplace_predict."""
    frame = pd.DataFrame([{**inputs, "distance_m": inputs["race_distance_m"], "event_date": inputs["race_date"]}])
    frame = frame.assign(**{c: pd.to_numeric(frame[c]) for c in ("acwr_rolling",)})
    x = mi.model_inputs(frame)
    raw = booster.inplace_predict(x.to_numpy(np.float32), missing=np.nan)
    return float(mi.predicted_time_s(raw, x)[0])


def test_the_folder_holds_model_signature_odt_metadata_stamp_and_library(compiled_export):
    files = sorted(p.name for p in compiled_export.iterdir())
    stamp = json.loads((compiled_export / embedded.STAMP_FILE).read_text())
    assert stamp["predictor"] == embedded.COMPILED, stamp.get("fallback_reason")
    assert files == sorted([*stamp["files"], embedded.STAMP_FILE])
    assert stamp["library"] in files and embedded.MODEL_FILE in files
    assert {stamp[k] for k in ("model", "version", "alias", "run_id")} == {"time_estimator", "7", "champion", "r1"}
    assert stamp["versions"]["xgboost"] and stamp["versions"]["treelite"] and stamp["exported_at"].endswith("+00:00")
    odt = json.loads((compiled_export / embedded.ON_DEMAND_FILE).read_text())
    assert "vdot_projection_s" in {t["name"] for t in odt["transformations"]}
    assert "vdot_log_pace" in odt["on_demand_inputs"] and "atl" not in odt["on_demand_inputs"]
    assert odt["request_parameters"] == ["race_date", "race_distance_m"]
    assert {"vdot_best_90d", "birth_date", "prev_race_date"} <= set(odt["stored_features"])
    signature = json.loads((compiled_export / embedded.SIGNATURE_FILE).read_text())
    assert [item["name"] for item in signature["inputs"]] == list(mi.MODEL_INPUTS)


def test_compiled_trees_equal_xgboost_on_every_row_to_float32_rounding(compiled_export, booster):
    predictor = EmbeddedPredictor.load(compiled_export)
    assert predictor.backend == embedded.COMPILED
    rows = np.concatenate(
        [random_inputs(500, seed=11), tree_compiler.validation_rows(booster, mi.MODEL_INPUTS, None, seed=5)]
    )
    got = np.array([predictor.predict_vector(list(row)) for row in rows])
    want = booster.inplace_predict(rows.astype(np.float32), missing=np.nan).astype(np.float64)
    tolerance = tree_compiler.rounding_tolerance(booster)
    assert np.max(np.abs(got - want)) <= tolerance
    assert tolerance < 1e-5  # float32 rounding of 30 small leaves, not a loose bound
    stamp = predictor.stamp
    assert stamp["verification"]["rows"] > 1000 and stamp["verification"]["max_abs_diff"] <= tolerance


def test_missing_values_take_xgboosts_default_direction(compiled_export, booster):
    """NaN must reach the C code as TL2cgen's missing marker: a NaN compared with `<` would go right."""
    predictor = EmbeddedPredictor.load(compiled_export)
    empty = [math.nan] * len(mi.MODEL_INPUTS)
    want = float(booster.inplace_predict(np.asarray([empty], np.float32), missing=np.nan)[0])
    assert predictor.predict_vector(empty) == pytest.approx(want, abs=tree_compiler.rounding_tolerance(booster))


def test_predict_from_a_dict_equals_batch_scoring(fallback_export, compiled_export, booster):
    inputs = {**request_inputs(), "race_date": "2025-01-12"}
    expected = batch_prediction(booster, inputs)
    fallback = EmbeddedPredictor.load(fallback_export)
    assert fallback.predict(inputs) == expected  # same XGBoost call: bit for bit
    compiled = EmbeddedPredictor.load(compiled_export)
    assert compiled.predict(inputs) == pytest.approx(expected, rel=1e-5)
    # Without race_date the race is the day after feature_date, as batch scoring predicts.
    no_date = request_inputs()
    assert fallback.predict(no_date) == batch_prediction(booster, {**no_date, "race_date": "2024-12-31"})


def test_without_a_compiler_the_export_falls_back_to_xgboost(fallback_export):
    stamp = json.loads((fallback_export / embedded.STAMP_FILE).read_text())
    assert stamp["predictor"] == embedded.XGBOOST
    assert "no C compiler" in stamp["fallback_reason"] and "/nonexistent/cc" in stamp["fallback_reason"]
    assert not list(fallback_export.glob("*.so"))
    assert EmbeddedPredictor.load(fallback_export).backend == embedded.XGBOOST


def test_a_compiled_library_that_disagrees_is_not_used(booster_file, tmp_path, monkeypatch):
    """Verification is real: a library whose trees are off (missing values sent the wrong way) is refused."""
    honest = embedded.CompiledTrees.predict_row

    def ignores_missing(self, values):
        return honest(self, [0.0 if v != v else v for v in values])

    monkeypatch.setattr(embedded.CompiledTrees, "predict_row", ignores_missing)
    stamp = export_to(tmp_path / "export", booster_file, tmp_path / "scratch")
    assert stamp["predictor"] == embedded.XGBOOST
    assert "differ from XGBoost" in stamp["fallback_reason"]


def test_the_folder_is_replaced_atomically(booster_file, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")  # no compile: this test is about the folder
    out = tmp_path / "models" / "time_estimator"
    first = export_to(out, booster_file, tmp_path / "scratch")
    second = export_to(out, booster_file, tmp_path / "scratch")
    assert second["exported_at"] >= first["exported_at"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["time_estimator"]  # no temp folder left

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed half-way through writing

    monkeypatch.setattr(export, "build_library", crash)
    with pytest.raises(KeyboardInterrupt):
        export_to(out, booster_file, tmp_path / "scratch")
    assert sorted(p.name for p in out.parent.iterdir()) == ["time_estimator"]
    assert EmbeddedPredictor.load(out).stamp["exported_at"] == second["exported_at"]  # the previous export
    fresh = tmp_path / "models" / "never_written"
    with pytest.raises(KeyboardInterrupt):
        export_to(fresh, booster_file, tmp_path / "scratch")
    assert not fresh.exists()


def test_a_corrupted_or_missing_file_is_a_clear_error(compiled_export, tmp_path):
    def broken_copy(name: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(compiled_export, copy)
        return copy

    truncated = broken_copy("truncated")
    (truncated / embedded.MODEL_FILE).write_bytes((truncated / embedded.MODEL_FILE).read_bytes()[:100])
    with pytest.raises(PlatformError, match=r"model\.ubj is corrupted.*export-model"):
        EmbeddedPredictor.load(truncated)
    no_signature = broken_copy("no_signature")
    (no_signature / embedded.SIGNATURE_FILE).unlink()
    with pytest.raises(PlatformError, match=r"signature\.json is missing.*export-model"):
        EmbeddedPredictor.load(no_signature)
    no_stamp = broken_copy("no_stamp")
    (no_stamp / embedded.STAMP_FILE).unlink()
    with pytest.raises(PlatformError, match="not a complete export"):
        EmbeddedPredictor.load(no_stamp)
    with pytest.raises(PlatformError, match="does not exist"):
        EmbeddedPredictor.load(tmp_path / "nowhere")


def test_missing_inputs_name_the_field(fallback_export):
    predictor = EmbeddedPredictor.load(fallback_export)
    inputs = request_inputs()
    del inputs["race_distance_m"]
    with pytest.raises(InvalidRequest) as missing:
        predictor.predict(inputs)
    assert missing.value.field == "race_distance_m"
    inputs = request_inputs()
    del inputs["feature_date"]
    with pytest.raises(InvalidRequest) as no_day:
        predictor.predict(inputs)
    assert no_day.value.field == "race_date"
    with pytest.raises(InvalidRequest, match="signature order"):
        predictor.predict_vector([1.0, 2.0])


def test_loading_and_predicting_needs_no_spark_mlflow_or_network(compiled_export):
    code = f"""
import socket, sys
def no_network(*args, **kwargs):
    raise AssertionError("network used")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = no_network
import json
from athlete_platform.inference.embedded import EmbeddedPredictor
predictor = EmbeddedPredictor.load({str(compiled_export)!r})
assert predictor.backend == "compiled"
seconds = predictor.predict(json.loads({json.dumps({**request_inputs(), "race_date": "2025-01-12"})!r}))
assert 100 < seconds < 10**6, seconds
predictor.predict_vector([0.5] * len(predictor.input_names))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "mlflow", "xgboost", "treelite"))
print(",".join(loaded) or "none")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HOME, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def test_export_model_from_the_registry(booster_file, tmp_path):
    """A model logged and registered in a temporary MLflow store, exported by the console command."""
    import mlflow
    import xgboost as xgb
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from athlete_platform.config import load_settings
    from athlete_platform.lakehouse.models import configure_mlflow

    env = {
        **os.environ,
        "ATHLETE_CONF_FILE": str(HOME / "conf" / "test.yaml"),
        "ATHLETE_DATA_DIR": str(tmp_path / "lake"),
        "ATHLETE_CATALOG__SCHEMA_PREFIX": "embedded_",
    }
    previous = {key: os.environ.get(key) for key in env if key.startswith("ATHLETE_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("ATHLETE_")})
    try:
        settings = load_settings()
        configure_mlflow(settings)
        name = export.registered_name(settings, "time_estimator")
        model = xgb.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1)
        x = pd.DataFrame(random_inputs(200, seed=4), columns=list(mi.MODEL_INPUTS))
        model.fit(x, np.nan_to_num(x["atl"].to_numpy()))
        with mlflow.start_run() as run:
            info = mlflow.xgboost.log_model(
                model,
                name="model",
                signature=infer_signature(x, model.predict(x)),
                input_example=x.head(3),
                registered_model_name=name,
            )
        MlflowClient().set_registered_model_alias(name, "champion", str(info.registered_model_version))
        with pytest.raises(PlatformError, match="Its aliases are champion"):
            export.export_model(settings, "time_estimator", "nope", tmp_path / "never")
        with pytest.raises(PlatformError, match="Unknown model 'pace'.*time_estimator"):
            export.export_model(settings, "pace", "champion", tmp_path / "never")
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out = tmp_path / "exported"
    cli = [sys.executable, "-m", "athlete_platform.cli", "export-model", "--model", "time_estimator"]
    done = subprocess.run(
        [*cli, "--alias", "champion", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert f"exported {name} v1 ('champion')" in done.stdout
    predictor = EmbeddedPredictor.load(out)
    assert predictor.stamp["run_id"] == run.info.run_id and predictor.stamp["version"] == "1"
    assert predictor.stamp["registered_model"] == name == "uc_athlete_data.embedded_ml.time_estimator"
    row = x.to_numpy()[7]
    assert predictor.predict_vector(list(row)) == pytest.approx(float(model.predict(x.iloc[[7]])[0]), abs=1e-6)
    failed = subprocess.run(
        [*cli, "--alias", "nope", "--out", str(tmp_path / "never")], capture_output=True, text=True, env=env
    )
    assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1
    assert "has no 'nope' version" in failed.stderr and not (tmp_path / "never").exists()
