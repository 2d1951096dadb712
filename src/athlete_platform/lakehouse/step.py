"""The step contract every pipeline step follows.

    extract(ctx, params) -> inputs      reads tables/files (I/O at the edge)
    transform(inputs)    -> outputs     pure: DataFrames in, DataFrame(s) out, unit-tested on tiny data
    load(ctx, outputs)   -> result      idempotent writes keyed on the run date; returns counts

`run(ctx, params)` chains the three. `ctx` carries the settings, the Spark session, the table
names, the run date, the run's logical time and the run id; `params` are the step's own
arguments, declared as `Param`s so one registry (`athlete_platform.steps`) can turn them into
CLI options, `jobs/` arguments and Airflow spark-submit arguments alike. A param the caller
leaves out is absent from `params` or None: `extract` decides what that means.

A step that writes several tables returns a small dataclass of DataFrames from `transform`.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from athlete_platform.config import Settings
    from athlete_platform.lakehouse.tables import TableNames

Inputs = TypeVar("Inputs")
Outputs = TypeVar("Outputs")
Result = TypeVar("Result")


def end_of_day(day: date) -> datetime:
    """The first instant after `day` (naive UTC): a daily run's logical time by default."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def wall_clock() -> datetime:
    """Naive UTC wall-clock time, for lineage stamps only (`_ingested_at`, `computed_at`, ...).

    No step chooses its input from it: inputs come from the run date and logical time.
    """
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class StepContext:
    """What a step gets: settings, session, names, run date and logical time, run id."""

    settings: Settings
    spark: SparkSession
    names: TableNames
    run_date: date
    # The end of the run's data interval (Airflow's data_interval_end): data that starts at or
    # after it belongs to a later run. Defaults to the end of the run date.
    logical_time: datetime | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.logical_time is None:
            object.__setattr__(self, "logical_time", end_of_day(self.run_date))


@dataclass(frozen=True)
class Param:
    """One argument of a step: `--name-with-dashes` on the CLI, in jobs/ and in DAGs."""

    name: str
    help: str
    kind: type = str  # str, bool (a flag) or date (YYYY-MM-DD)
    default: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class Step(ABC, Generic[Inputs, Outputs, Result]):
    """One pipeline step: extract -> pure transform -> load.

    Its name, job script, help text and params are declared once, in the registry
    (`athlete_platform.steps`), which also fills in the params' defaults.
    """

    @abstractmethod
    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> Inputs: ...

    @abstractmethod
    def transform(self, inputs: Inputs) -> Outputs: ...

    @abstractmethod
    def load(self, ctx: StepContext, outputs: Outputs) -> Result: ...

    def run(self, ctx: StepContext, params: Mapping[str, Any] | None = None) -> Result:
        return self.load(ctx, self.transform(self.extract(ctx, params or {})))
