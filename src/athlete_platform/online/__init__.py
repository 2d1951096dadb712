"""The online side of the feature store: the current feature row per athlete (SCD type 4),
kept in sync with the offline Delta table by materialization and by the streaming job."""
