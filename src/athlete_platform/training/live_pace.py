"""Training pipeline of the live pace coach: race splits -> snapshots -> XGBoost -> MLflow -> gate.

extract: the race rows the time estimator trains on (`training.dataset.training_rows`: each race
         with the athlete's stored features of the day before, profile and previous race),
         silver.race_splits, and the registry's time estimator and live champions;
transform (pure): snapshots of every race at 5 %, 10 %, ..., 95 % (`training.live_snapshots`),
         inputs by the shared on-demand transformations (`features.live_inputs`), the time
         estimator's split (time cutoff + held-out athletes), XGBoost on
         log(finish / even-pace finish), every bar scored on the held-out snapshots, the gate
         (`training.live_gate`);
load:    MLflow run (own experiment `live_pace_coach`: its metrics are not the time estimator's,
         so the two never share a comparison view) with params, every gate number as a metric,
         the gate table as an artifact, lineage tags; the model registered as
         `<catalog>.ml.live_pace_coach` with signature and input example, alias `challenger`,
         and `champion` when the gate says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from athlete_platform.errors import PlatformError
from athlete_platform.features import live_inputs as li
from athlete_platform.features import model_inputs as mi
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.models import CHALLENGER, CHAMPION, configure_mlflow, resolve_alias
from athlete_platform.lakehouse.step import Step, StepContext
from athlete_platform.training import live_gate
from athlete_platform.training.live_snapshots import snapshot_rows, snapshots
from athlete_platform.training.pipeline import git_commit, is_heldout_athlete, split_rows

log = logging.getLogger(__name__)

EXPERIMENT = "live_pace_coach"
TARGET = "log(finish_time_s / even_pace_finish_s)"
MIN_TRAIN_RACES = 20
XGB_PARAMS: dict[str, float | int | str] = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "reg_lambda": 1.0,
    "objective": "reg:squarederror",
    "random_state": 0,
    # One thread: on these few thousand rows a second one gains nothing, and beside other work
    # on 2 cores (the test workers, a Spark job) OpenMP's spinning threads made each fit 7-10x
    # slower (1.2 s -> 8-11 s for 700 rows x 400 trees at load 9), with identical predictions.
    "n_jobs": 1,
}


class NotEnoughLiveData(PlatformError):
    """Too few races with splits to train and judge the live model: the step is skipped, not failed."""


@dataclass(frozen=True)
class LiveTrainingSkipped:
    """What `train-live` returns when there is too little split data: nothing registered, the
    served live model (if any) unchanged, the reason said. The batch run and the DAG go on."""

    model_name: str
    decision: str
    promoted: bool = False

    def __str__(self) -> str:
        return f"{self.model_name}: not trained: {self.decision}"


@dataclass(frozen=True)
class LoadedModel:
    """A registry version loaded for scoring (None model: there is no such alias)."""

    name: str
    version: str | None
    model: object | None


@dataclass(frozen=True)
class LiveTrainingInputs:
    races: pd.DataFrame  # one row per labelled race, as-of joined (training_rows)
    splits: pd.DataFrame  # silver.race_splits up to the run date
    versions: dict[str, int]
    run_date: date
    time_estimator: LoadedModel
    live_champion: LoadedModel
    params_override: dict


@dataclass(frozen=True)
class TrainedLiveModel:
    model: object  # xgboost.XGBRegressor
    params: dict
    cutoff_date: date
    x_train: pd.DataFrame
    train_rows: int
    scored: pd.DataFrame  # held-out snapshots with every predictor's finish time
    table: pd.DataFrame
    decision: live_gate.GateDecision
    inputs: LiveTrainingInputs


@dataclass
class LiveTrainingResult:
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    promoted: bool
    decision: str
    gate_table: str
    champion_version: str | None
    rows: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version}: {self.decision}\n{self.gate_table}"


def race_groups(races: pd.DataFrame) -> tuple[pd.Series, date]:
    """Per race (aligned with `races`): `train`, `heldout_races` or `heldout_athletes`, by the
    time estimator's split of the same race frame; and the time cutoff."""
    split = split_rows(races)
    heldout_athlete = races["athlete_id"].map(is_heldout_athlete)
    later = pd.to_datetime(races["race_date"]) >= pd.Timestamp(split.cutoff_date)
    group = np.where(heldout_athlete, "heldout_athletes", np.where(later, "heldout_races", "train"))
    return pd.Series(group, index=races.index, name="group"), split.cutoff_date


def prerace_predictions(model: object, races: pd.DataFrame) -> np.ndarray:
    """The time estimator's finish time for each race row, from the features of the day before."""
    inputs = mi.model_inputs(races)
    return mi.predicted_time_s(model.predict(inputs), inputs)


def _score_other(loaded: LoadedModel, score, what: str) -> tuple[np.ndarray | None, str | None]:
    """`score(model)`, or (None, why not) when the version is missing or cannot score these inputs."""
    if loaded.model is None:
        return None, None
    try:
        return np.asarray(score(loaded.model), float), None
    except (ValueError, KeyError) as exc:
        return None, f"{what} v{loaded.version} cannot score the current inputs ({exc})"


def fit_and_gate(inputs: LiveTrainingInputs) -> TrainedLiveModel:
    """Pure transform: snapshots, split, fit, score every bar on held-out snapshots, decide."""
    import xgboost as xgb

    races = inputs.races.reset_index(drop=True)
    if races.empty:
        raise NotEnoughLiveData(f"No race results up to {inputs.run_date}: run silver and features first.")
    groups, cutoff = race_groups(races)
    races = races.assign(group=groups)
    rows = snapshot_rows(races, snapshots(inputs.splits, races))
    train = rows[rows["group"] == "train"].reset_index(drop=True)
    test = rows[rows["group"] != "train"].reset_index(drop=True)
    train_races, test_races_n = train["session_id"].nunique(), test["session_id"].nunique()
    if train_races < MIN_TRAIN_RACES or test.empty:
        raise NotEnoughLiveData(
            f"Not enough races with splits up to {inputs.run_date} to train the live pace coach: "
            f"{train_races} training races (need {MIN_TRAIN_RACES}+) and {test_races_n} "
            "held-out races. silver.race_splits comes from the race records' splits: land data with splits "
            "(`athlete-platform generate` writes them; a lakehouse whose landing files were ingested before "
            "splits existed keeps none, since bronze reads a path once: land new files or use a fresh data_dir), "
            "run `athlete-platform silver`, or pick a later run date."
        )
    params = {**XGB_PARAMS, **inputs.params_override}
    x_train, x_test = li.live_inputs(train), li.live_inputs(test)
    even_train, even_test = li.even_pace_finish_s(train), li.even_pace_finish_s(test)
    model = xgb.XGBRegressor(**params).fit(x_train, li.training_target(train["finish_time_s"], even_train))

    scored = test[["session_id", "athlete_id", "group", "fraction", "finish_time_s", "distance_m"]].copy()
    scored["live"] = li.predicted_finish_s(model.predict(x_test), even_test, test["elapsed_s"])
    scored["even_pace"] = even_test
    test_races = races[races["group"] != "train"].reset_index(drop=True)
    prerace, prerace_problem = _score_other(
        inputs.time_estimator, lambda m: prerace_predictions(m, test_races), "the time estimator champion"
    )
    if inputs.time_estimator.model is None:
        prerace_problem = (
            f"no champion of {inputs.time_estimator.name} to compare with (the pre-race bar): "
            "run `athlete-platform train` first, then train-live again"
        )
    by_race = pd.Series(prerace if prerace is not None else np.nan, index=test_races["session_id"])
    scored["prerace"] = scored["session_id"].map(by_race).to_numpy(float)
    champion, champion_problem = _score_other(
        inputs.live_champion,
        lambda m: li.predicted_finish_s(m.predict(x_test), even_test, test["elapsed_s"]),
        "the live champion",
    )
    if champion_problem:
        log.warning("%s; treating it as beaten", champion_problem)
    scored["champion"] = champion if champion is not None else np.nan
    table = live_gate.gate_table(scored)
    decision = live_gate.gate_decision(table, prerace_problem)
    return TrainedLiveModel(model, params, cutoff, x_train, len(train), scored, table, decision, inputs)


class LiveTrainingStep(Step[LiveTrainingInputs, TrainedLiveModel, LiveTrainingResult]):
    """silver.race_splits + silver.races + feature view -> live_pace_coach in MLflow + promotion gate."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> LiveTrainingInputs:
        from pyspark.sql import functions as F

        from athlete_platform.errors import SetupError
        from athlete_platform.lakehouse.delta import current_version
        from athlete_platform.training.dataset import training_rows

        splits_table = ctx.names(tables.RACE_SPLITS)
        if not ctx.spark.catalog.tableExists(splits_table):
            raise SetupError(f"{splits_table} does not exist yet: run silver first (`athlete-platform silver`).")
        races, versions = training_rows(ctx.spark, ctx.names, ctx.run_date)
        versions["race_splits"] = current_version(ctx.spark, splits_table)
        splits = (
            ctx.spark.read.option("versionAsOf", versions["race_splits"])
            .table(splits_table)
            .where(F.col("race_date") <= F.lit(ctx.run_date))
            .select("session_id", "km", "cumulative_distance_m", "cumulative_time_s", "split_avg_hr")
            .toPandas()
        )
        configure_mlflow(ctx.settings, EXPERIMENT)
        return LiveTrainingInputs(
            races,
            splits,
            versions,
            ctx.run_date,
            _load(ctx.names(tables.TIME_ESTIMATOR)),
            _load(ctx.names(tables.LIVE_PACE_COACH)),
            dict(params.get("xgb_params") or {}),
        )

    def run(
        self, ctx: StepContext, params: Mapping[str, Any] | None = None
    ) -> LiveTrainingResult | LiveTrainingSkipped:
        """As every step, except that too little split data skips the step with a warning (the
        live model is optional: race predictions, the online store and the report do not need it)."""
        try:
            return super().run(ctx, params)
        except NotEnoughLiveData as reason:
            log.warning("train-live skipped: %s", reason)
            return LiveTrainingSkipped(ctx.names(tables.LIVE_PACE_COACH), str(reason))

    def transform(self, inputs: LiveTrainingInputs) -> TrainedLiveModel:
        return fit_and_gate(inputs)

    def load(self, ctx: StepContext, trained: TrainedLiveModel) -> LiveTrainingResult:
        return register_and_gate(ctx, trained)


def _load(model_name: str) -> LoadedModel:
    """The model's champion, pinned to its version, loaded (None model when there is none)."""
    import mlflow

    ref = resolve_alias(model_name, CHAMPION)
    if ref is None:
        return LoadedModel(model_name, None, None)
    return LoadedModel(model_name, ref.version, mlflow.xgboost.load_model(ref.uri))


def register_and_gate(ctx: StepContext, trained: TrainedLiveModel) -> LiveTrainingResult:
    """Log the run, register the version as challenger, make it champion if the gate passed."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    model_name = ctx.names(tables.LIVE_PACE_COACH)
    run_date = trained.inputs.run_date
    metrics = live_gate.gate_metrics(trained.table)
    metrics["train_snapshots"] = float(trained.train_rows)
    text = live_gate.format_gate_table(trained.table)
    configure_mlflow(ctx.settings, EXPERIMENT)
    with mlflow.start_run(run_name=f"live_pace_coach {run_date}") as run:
        mlflow.log_params(
            {
                **trained.params,
                "run_date": str(run_date),
                "time_cutoff": str(trained.cutoff_date),
                "target": TARGET,
                "inputs": ",".join(li.LIVE_INPUTS),
                "buckets": ",".join(b[2] for b in live_gate.BUCKETS),
                "time_estimator_version": trained.inputs.time_estimator.version or "none",
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_text(text + "\n", "gate_table.txt")
        mlflow.set_tags(
            {
                "git_commit": git_commit(ctx.settings.home),
                "job_run_id": ctx.run_id,
                **{f"delta_version.{table}": str(v) for table, v in trained.inputs.versions.items()},
            }
        )
        x_train = trained.x_train
        info = mlflow.xgboost.log_model(
            trained.model,
            name="model",
            signature=infer_signature(x_train, trained.model.predict(x_train)),
            input_example=x_train.head(3),
            registered_model_name=model_name,
        )
        version = str(info.registered_model_version)
        client = MlflowClient()
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        promoted = trained.decision.promoted
        if promoted:
            client.set_registered_model_alias(model_name, CHAMPION, version)
        decision = f"v{version} {trained.decision.summary}"
        mlflow.set_tags({"promotion.decision": decision[:5000], "promotion.promoted": str(promoted)})
    log.info("train-live gate (finish-time MAPE on held-out snapshots):\n%s\n%s", text, decision)
    return LiveTrainingResult(
        model_name=model_name,
        version=version,
        run_id=run.info.run_id,
        metrics=metrics,
        promoted=promoted,
        decision=decision,
        gate_table=text,
        champion_version=version if promoted else trained.inputs.live_champion.version,
        rows={
            "train_snapshots": trained.train_rows,
            "test_snapshots": len(trained.scored),
            "test_races": int(trained.scored["session_id"].nunique()),
        },
    )
