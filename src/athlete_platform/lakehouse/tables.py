"""The one place that knows table names.

Jobs name tables by `TableId` (schema + table); `TableNames` renders them for the
configured catalog: `uc_athlete_data.gold.athlete_predictions` on the embedded and Unity
backends, `gold.athlete_predictions` on the `session` backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from athlete_platform.config import CatalogSettings

SCHEMAS: dict[str, str] = {
    "bronze": "Raw records and device files as landed, plus quarantine.",
    "silver": "Typed, validated, deduplicated athletes, sessions and races.",
    "feature_store": "Daily per-athlete training-load features (offline store).",
    "gold": "Predictions and reports that users query.",
    "ml": "Models registered in MLflow.",
}


@dataclass(frozen=True)
class TableId:
    schema: str
    table: str


# bronze
SESSIONS_RAW = TableId("bronze", "sessions_raw")
DEVICE_FILES = TableId("bronze", "device_files")
LANDING_FILES = TableId("bronze", "landing_files")
QUARANTINE = TableId("bronze", "quarantine")
# silver
ATHLETES = TableId("silver", "athletes")
SESSIONS = TableId("silver", "sessions")
RACES = TableId("silver", "races")
# feature store
ATHLETE_ROLLING_FEATURES = TableId("feature_store", "athlete_rolling_features")
# gold
ATHLETE_PREDICTIONS = TableId("gold", "athlete_predictions")
ATHLETE_WEEKLY_REPORT = TableId("gold", "athlete_weekly_report")
# ml (registered model name, not a Delta table)
TIME_ESTIMATOR = TableId("ml", "time_estimator")


@dataclass(frozen=True)
class TableNames:
    """Renders names for one catalog; `catalog=None` means two-level names."""

    catalog: str | None

    @classmethod
    def from_settings(cls, catalog: CatalogSettings) -> TableNames:
        return cls(None if catalog.backend == "session" else catalog.name)

    def schema(self, schema: str) -> str:
        return f"{self.catalog}.{schema}" if self.catalog else schema

    def __call__(self, table: TableId) -> str:
        return f"{self.schema(table.schema)}.{table.table}"
