"""Training pipeline: race labels -> XGBoost time estimator -> MLflow -> promotion gate.

Split (both ways, so the score says something about new races *and* new athletes):
  test  = races on or after the time cutoff (the latest 20 % of race days)
          + every race of the held-out athletes (20 % of athletes, by a stable hash);
  train = the rest.
The model and both baselines (Riegel from the athlete's previous race, Daniels VDOT from
`vdot_best_90d`) are scored on the same test rows: those where both baselines exist. The
noise floor the generator injected (expected MAPE of the race noise alone) is logged too.

Hyper-parameters: unless given (`xgb_params`), a few candidates are scored by time-series
cross-validation on the training races only (`training.tuning`, expanding folds of
`training.cv`); the lowest mean fold MAPE wins and each trial is an MLflow child run.

Gate: the new version gets alias `challenger`; it becomes `champion` only if its held-out
MAPE beats the current champion's (scored on the same rows now) and both baselines'.

Prediction intervals (P10-P90): conformal calibration on cross-fitted residuals
(`training.intervals`, as in CV+): the training athletes are split into 5 folds, and each
training race is scored by a model fitted on the other folds' athletes; the per-distance
quantiles of those residuals are the offsets. The registered model is fitted on every training
row, and the offsets are stored with the version (its MLmodel metadata). Every training race is
scored that way (each fold model sees 80 % of the rows, close to the final model), but only the
later half of them, by race day, calibrates: the earliest races were predicted from little
history (no previous race, a short heart-rate line), and their wider errors made intervals
that covered 85 % of the held-out races, which are all later still. (The latest quarter alone
left too few races per distance.) The held-out coverage is logged and printed, so whether it
holds is checked, not assumed.
Each version also gets a model card (`model_card.html`): MAPE by distance, experience and
fitness, coverage, a calibration plot and errors by distance.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from athlete_platform.domain.distances import DISTANCE_NAMES, RACE_DISTANCES_M
from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.models import CHALLENGER, CHAMPION, configure_mlflow, resolve_alias
from athlete_platform.lakehouse.step import Step, StepContext
from athlete_platform.training import intervals, model_card, reference, tuning

log = logging.getLogger(__name__)

TIME_TEST_FRACTION = 0.2
HELDOUT_ATHLETE_FRACTION = 0.2
MIN_TRAIN_ROWS = 30
#: Cross-fitting folds (by athlete) whose out-of-fold residuals calibrate the intervals.
CALIBRATION_FOLDS = 5
#: ... of which the races on or after this quantile of the training race days calibrate.
CALIBRATION_FROM_QUANTILE = 0.5
# Shallow trees and shrinkage: a few hundred races per year of sample data.
XGB_PARAMS: dict[str, float | int | str] = {
    "n_estimators": 400,
    "max_depth": 3,
    "learning_rate": 0.03,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 3,
    "reg_lambda": 1.0,
    "objective": "reg:squarederror",
    "random_state": 0,
    # One thread: on these few thousand rows a second one gains nothing, and beside other work
    # on 2 cores (the test workers, a Spark job) OpenMP's spinning threads made each fit 7-10x
    # slower (1.2 s -> 8-11 s for 700 rows x 400 trees at load 9), with identical predictions.
    "n_jobs": 1,
}


@dataclass(frozen=True)
class SplitResult:
    train: pd.DataFrame
    test: pd.DataFrame
    cutoff_date: date
    heldout_athletes: tuple[str, ...]


@dataclass
class TrainingResult:
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    promoted: bool
    decision: str
    champion_version: str | None
    rows: dict[str, int] = field(default_factory=dict)


def is_heldout_athlete(athlete_id: str, fraction: float = HELDOUT_ATHLETE_FRACTION) -> bool:
    """Stable assignment by hash (the same athlete is held out in every run)."""
    bucket = int(hashlib.sha256(athlete_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < fraction


def split_rows(frame: pd.DataFrame) -> SplitResult:
    """Time + athlete split (see the module docstring)."""
    days = pd.to_datetime(frame["race_date"])
    cutoff = days.quantile(1 - TIME_TEST_FRACTION).normalize()
    heldout = frame["athlete_id"].map(is_heldout_athlete)
    test_mask = (days >= cutoff) | heldout
    return SplitResult(
        train=frame[~test_mask].reset_index(drop=True),
        test=frame[test_mask].reset_index(drop=True),
        cutoff_date=cutoff.date(),
        heldout_athletes=tuple(sorted(frame.loc[heldout, "athlete_id"].unique())),
    )


def error_metrics(predicted_s: np.ndarray, actual_s: np.ndarray) -> dict[str, float]:
    error = np.asarray(predicted_s, float) - np.asarray(actual_s, float)
    return {
        "mae_s": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error) / actual_s)),
        "rmse_s": float(np.sqrt(np.mean(error**2))),
    }


def evaluate(test: pd.DataFrame, predicted_s: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Model and baseline metrics on the rows where both baselines exist; per distance too."""
    actual = test["finish_time_s"].to_numpy(float)
    distance = test["distance_m"].to_numpy(float)
    riegel = on_demand.riegel_projection_s(distance, test["prev_finish_time_s"], test["prev_distance_m"])
    vdot = on_demand.vdot_projection_s(distance, test["vdot_best_90d"])
    common = np.isfinite(riegel) & np.isfinite(vdot)
    out: dict[str, float] = {"test_rows": float(len(test)), "test_rows_with_baselines": float(common.sum())}
    if not common.any():
        return out, common
    for prefix, values in (("model", predicted_s), ("riegel", riegel), ("vdot", vdot)):
        for name, value in error_metrics(values[common], actual[common]).items():
            out[f"{prefix}_{name}"] = value
    for name, value in error_metrics(predicted_s, actual).items():
        out[f"model_all_rows_{name}"] = value
    for d in RACE_DISTANCES_M:
        rows = common & np.isclose(distance, d)
        if rows.any():
            tag = DISTANCE_NAMES[d].lower().replace(" ", "_")
            for prefix, values in (("model", predicted_s), ("riegel", riegel), ("vdot", vdot)):
                out[f"{prefix}_mape_{tag}"] = error_metrics(values[rows], actual[rows])["mape"]
    return out, common


def calibration_folds(athlete_ids: pd.Series, folds: int = CALIBRATION_FOLDS) -> np.ndarray:
    """Each training row's cross-fitting fold: by a stable hash of its athlete (another part of
    the hash than the held-out split's), so an athlete's races are never on both sides."""
    return np.array(
        [int(hashlib.sha256(a.encode()).hexdigest()[8:16], 16) % folds for a in athlete_ids.astype(str)], dtype=int
    )


def calibrate_intervals(params: dict, train: pd.DataFrame) -> dict[str, intervals.Offsets] | None:
    """Conformal offsets from cross-fitted residuals: each training race is scored by a model
    fitted on the other folds' athletes. None (and a warning) when a fold's complement is too
    small to fit or there are too few races for an interval that holds."""
    import xgboost as xgb

    folds = calibration_folds(train["athlete_id"])
    smallest_fit = min(int((folds != k).sum()) for k in range(CALIBRATION_FOLDS))
    if smallest_fit < MIN_TRAIN_ROWS or len(train) < intervals.min_calibration_rows():
        log.warning(
            "training: no prediction interval (%d training races; a fold leaves %d to fit on, need %d)",
            len(train),
            smallest_fit,
            MIN_TRAIN_ROWS,
        )
        return None
    inputs = mi.model_inputs(train)
    target = mi.training_target(train["finish_time_s"], train["distance_m"], inputs)
    residual = np.full(len(train), np.nan)
    for k in range(CALIBRATION_FOLDS):
        scored = folds == k
        if scored.any():
            model = xgb.XGBRegressor(**params).fit(inputs[~scored], target[~scored])
            residual[scored] = target[scored] - model.predict(inputs[scored])
    days = pd.to_datetime(train["race_date"]).to_numpy()
    later = days >= np.quantile(days.astype("int64"), CALIBRATION_FROM_QUANTILE).astype(days.dtype)
    if later.sum() < intervals.min_calibration_rows():
        later[:] = True
    return intervals.calibrate(residual[later], intervals.distance_groups(train["distance_m"].to_numpy()[later]))


def interval_s(
    residual: np.ndarray, inputs: pd.DataFrame, offsets: dict[str, intervals.Offsets] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(P10, P90) finish times, s, of predictions with model output `residual` (NaN without offsets)."""
    if offsets is None:
        missing = np.full(len(inputs), np.nan)
        return missing, missing.copy()
    low, high = intervals.interval(residual, intervals.distance_groups(inputs["distance_m"]), offsets)
    return mi.predicted_time_s(low, inputs), mi.predicted_time_s(high, inputs)


def coverage_metrics(actual_s: np.ndarray, p10_s: np.ndarray, p90_s: np.ndarray, distance_m: np.ndarray) -> dict:
    """P10-P90 coverage on held-out races: overall and per distance."""
    if np.isnan(p10_s).all():
        return {}
    out = {"interval_coverage": intervals.coverage_of(actual_s, p10_s, p90_s)}
    for d in RACE_DISTANCES_M:
        rows = np.isclose(distance_m, d)
        if rows.any():
            tag = DISTANCE_NAMES[d].lower().replace(" ", "_")
            out[f"interval_coverage_{tag}"] = intervals.coverage_of(actual_s[rows], p10_s[rows], p90_s[rows])
    return out


def evaluation_frame(test: pd.DataFrame, predicted_s: np.ndarray, p10_s: np.ndarray, p90_s: np.ndarray) -> pd.DataFrame:
    """One row per held-out race, in the model card's columns (`model_card.EVALUATION_COLUMNS`)."""
    distance = test["distance_m"].to_numpy(float)
    return pd.DataFrame(
        {
            "distance_m": distance,
            "actual_s": test["finish_time_s"].to_numpy(float),
            "predicted_s": predicted_s,
            "p10_s": p10_s,
            "p90_s": p90_s,
            "riegel_s": on_demand.riegel_projection_s(distance, test["prev_finish_time_s"], test["prev_distance_m"]),
            "races_before": test["races_before"].to_numpy(float),
            "ctl": test["ctl"].to_numpy(float),
        }
    )


def noise_floor_mape(landing: Path) -> float | None:
    """The generator's expected MAPE from race noise alone (None for real data)."""
    manifest = landing / "_generator" / "manifest.json"
    if not manifest.exists():
        return None
    return float(json.loads(manifest.read_text())["expected_mape_floor"])


def git_commit(home: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=home, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def champion_mape(model_name: str, test: pd.DataFrame, rows: np.ndarray) -> tuple[str | None, float]:
    """Current champion's version and MAPE on the given test rows (inf if it cannot score them)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    current = resolve_alias(model_name, CHAMPION)
    if current is None:
        return None, float("inf")
    current_version = current.version
    try:
        model = mlflow.xgboost.load_model(current.uri)
        inputs = mi.model_inputs(test)
        predicted = mi.predicted_time_s(model.predict(inputs), inputs)
    except (MlflowException, ValueError, KeyError) as exc:
        log.warning("champion v%s cannot score the current inputs (%s); treating it as beaten", current_version, exc)
        return current_version, float("inf")
    return current_version, error_metrics(predicted[rows], test["finish_time_s"].to_numpy(float)[rows])["mape"]


@dataclass(frozen=True)
class TrainingInputs:
    frame: pd.DataFrame  # one row per labelled race, as-of joined (training_rows)
    versions: dict[str, int]  # Delta versions read, for lineage
    run_date: date
    noise_floor_mape: float | None
    params_override: dict
    #: The monitoring reference population (`dataset.reference_states`); None: the training races.
    reference_states: pd.DataFrame | None = None
    #: Search the hyper-parameters by time-series CV (`training.tuning`) unless params are given.
    tune: bool = True


@dataclass(frozen=True)
class TrainedModel:
    model: object  # xgboost.XGBRegressor
    params: dict
    split: SplitResult
    x_train: pd.DataFrame
    metrics: dict[str, float]
    common: np.ndarray  # test rows where both baselines exist
    inputs: TrainingInputs
    offsets: dict[str, intervals.Offsets] | None  # P10/P90 offsets on the log-pace residual
    evaluation: pd.DataFrame  # held-out races for the model card
    trials: tuple[tuning.Trial, ...] = ()  # the hyper-parameter search, when it ran


def fit_and_evaluate(inputs: TrainingInputs) -> TrainedModel:
    """Pure transform: split, fit XGBoost on the residual over the baselines, score on held-out rows."""
    import xgboost as xgb

    from athlete_platform.errors import PlatformError

    frame = inputs.frame
    split = split_rows(frame) if len(frame) else None
    if split is None or len(split.train) < MIN_TRAIN_ROWS or len(split.test) == 0:
        raise PlatformError(
            f"Not enough race results up to {inputs.run_date} to train: {len(frame)} labelled races "
            f"(need {MIN_TRAIN_ROWS}+ for training plus a held-out set). Ingest more data or pick a later run date."
        )
    trials: tuple[tuning.Trial, ...] = ()
    overrides = dict(inputs.params_override)
    if inputs.tune and not overrides:  # parameters given explicitly are used as given
        trials = tuple(tuning.search(split.train, XGB_PARAMS, tuning.CANDIDATES))
        overrides = dict(tuning.best(trials).overrides)
    params = {**XGB_PARAMS, **overrides}
    offsets = calibrate_intervals(params, split.train)
    x_train = mi.model_inputs(split.train)
    y_train = mi.training_target(split.train["finish_time_s"], split.train["distance_m"], x_train)
    model = xgb.XGBRegressor(**params).fit(x_train, y_train)
    x_test = mi.model_inputs(split.test)
    residual = model.predict(x_test)
    predicted = mi.predicted_time_s(residual, x_test)
    p10, p90 = interval_s(residual, x_test, offsets)
    metrics, common = evaluate(split.test, predicted)
    actual_s, distance_m = split.test["finish_time_s"].to_numpy(float), x_test["distance_m"].to_numpy(float)
    metrics.update(coverage_metrics(actual_s, p10, p90, distance_m))
    if inputs.noise_floor_mape is not None:
        metrics["noise_floor_mape"] = inputs.noise_floor_mape
    evaluation = evaluation_frame(split.test, predicted, p10, p90)
    return TrainedModel(model, params, split, x_train, metrics, common, inputs, offsets, evaluation, trials)


class TrainingStep(Step[TrainingInputs, TrainedModel, TrainingResult]):
    """silver.races + feature view -> XGBoost time estimator -> MLflow registry + promotion gate."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> TrainingInputs:
        from athlete_platform.training.dataset import reference_states, training_rows

        frame, versions = training_rows(ctx.spark, ctx.names, ctx.run_date)
        floor = noise_floor_mape(ctx.settings.landing_path)
        states = reference_states(ctx.spark, ctx.names, ctx.run_date, versions)
        return TrainingInputs(frame, versions, ctx.run_date, floor, dict(params.get("xgb_params") or {}), states)

    def transform(self, inputs: TrainingInputs) -> TrainedModel:
        return fit_and_evaluate(inputs)

    def load(self, ctx: StepContext, trained: TrainedModel) -> TrainingResult:
        return register_and_gate(ctx, trained)


def interval_metadata(offsets: dict[str, intervals.Offsets] | None) -> dict | None:
    """The MLmodel metadata that carries the version's P10/P90 offsets to batch scoring."""
    return None if offsets is None else {intervals.METADATA_KEY: intervals.to_metadata(offsets)}


def write_model_card(ctx: StepContext, model_name: str, version: str, trained: TrainedModel) -> Path:
    """Render the version's model card to `<output_dir>/models/` (the weekly report links it)."""
    metrics = trained.metrics
    summary = {
        label: metrics[key]
        for label, key in (
            ("model MAPE", "model_mape"),
            ("Riegel MAPE", "riegel_mape"),
            ("VDOT MAPE", "vdot_mape"),
            ("noise floor", "noise_floor_mape"),
            ("P10-P90 coverage", "interval_coverage"),
        )
        if key in metrics
    }
    path = ctx.settings.output_path / model_card.card_path(model_name, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card.render(model_name, version, trained.evaluation, summary))
    return path


def log_trials(trials: tuple[tuning.Trial, ...]) -> None:
    """Each hyper-parameter trial as a child run of the active run; the choice on the parent."""
    import mlflow

    if not trials:
        return
    chosen = tuning.best(trials)
    for trial in trials:
        with mlflow.start_run(run_name=f"cv trial {trial.number}", nested=True):
            mlflow.log_params({"overrides": json.dumps(dict(trial.overrides), sort_keys=True), **trial.overrides})
            mlflow.log_metrics(
                {"cv_mape": trial.mape, **{f"cv_mape_fold_{k}": m for k, m in enumerate(trial.fold_mape)}}
            )
            mlflow.set_tag("selected", str(trial is chosen).lower())
    mlflow.log_metric("cv_mape", chosen.mape)
    mlflow.log_param("cv_selected_trial", chosen.number)


def register_and_gate(ctx: StepContext, trained: TrainedModel) -> TrainingResult:
    """Log the run to MLflow, register the version as challenger, promote it if it beats every bar."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    model, split, x_train, metrics, common = (
        trained.model,
        trained.split,
        trained.x_train,
        trained.metrics,
        trained.common,
    )
    run_date, floor = trained.inputs.run_date, trained.inputs.noise_floor_mape
    model_name = ctx.names(tables.TIME_ESTIMATOR)
    configure_mlflow(ctx.settings)
    with mlflow.start_run(run_name=f"time_estimator {run_date}") as run:
        mlflow.log_params(
            {
                **trained.params,
                "run_date": str(run_date),
                "time_cutoff": str(split.cutoff_date),
                "heldout_athletes": len(split.heldout_athletes),
                "target": "log(finish_time_s/distance_m) - base_log_pace",
                "inputs": ",".join(mi.MODEL_INPUTS),
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(
            {
                "git_commit": git_commit(ctx.settings.home),
                "job_run_id": ctx.run_id,
                **{f"delta_version.{table}": str(v) for table, v in trained.inputs.versions.items()},
            }
        )
        log_trials(trained.trials)
        train_data = mlflow.data.from_pandas(split.train.assign(**x_train), name="time_estimator_train")
        mlflow.log_input(train_data, context="training")
        mlflow.log_input(mlflow.data.from_pandas(split.test, name="time_estimator_test"), context="test")
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(x_train, model.predict(x_train)),
            input_example=x_train.head(3),
            registered_model_name=model_name,
            metadata=interval_metadata(trained.offsets),
        )
        version = str(info.registered_model_version)
        card = write_model_card(ctx, model_name, version, trained)
        mlflow.log_artifact(str(card), artifact_path="model_card")
        with tempfile.TemporaryDirectory(prefix="athlete-platform-reference-") as folder:
            states = trained.inputs.reference_states
            written = reference.write(Path(folder), model, split.train if states is None or states.empty else states)
            mlflow.log_artifacts(str(written), artifact_path=reference.ARTIFACT_PATH)
        client = MlflowClient()
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        champion_version, champion_score = champion_mape(model_name, split.test, common)
        model_score = metrics.get("model_mape", float("inf"))
        bars = {
            "champion": champion_score,
            "riegel": metrics.get("riegel_mape", float("inf")),
            "vdot": metrics.get("vdot_mape", float("inf")),
        }
        promoted = all(model_score < bar for bar in bars.values())
        decision = (
            f"v{version} held-out MAPE {model_score:.4f} vs champion "
            f"{'v' + champion_version if champion_version else '(none)'} {champion_score:.4f}, "
            f"Riegel {bars['riegel']:.4f}, VDOT {bars['vdot']:.4f}"
            + (f", noise floor {floor:.4f}" if floor is not None else "")
            + (
                f"; P10-P90 coverage {metrics['interval_coverage']:.1%} on {len(split.test)} held-out races"
                if "interval_coverage" in metrics
                else "; no prediction interval"
            )
            + (": promoted to champion" if promoted else ": not promoted (champion unchanged)")
        )
        if promoted:
            client.set_registered_model_alias(model_name, CHAMPION, version)
        mlflow.set_tags({"promotion.decision": decision, "promotion.promoted": str(promoted)})
        if np.isfinite(champion_score):
            mlflow.log_metric("champion_mape", champion_score)
    log.info("training: %s", decision)
    return TrainingResult(
        model_name=model_name,
        version=version,
        run_id=run.info.run_id,
        metrics=metrics,
        promoted=promoted,
        decision=decision,
        champion_version=version if promoted else champion_version,
        rows={"train": len(split.train), "test": len(split.test), "test_with_baselines": int(common.sum())},
    )
