"""The maintenance step's retention plan (pure; the Spark side is in tests/integration/test_storage.py)."""

from __future__ import annotations

import math

from athlete_platform.lakehouse.maintenance import (
    DAY_MS,
    HOUR_MS,
    TableState,
    _interval_days,
    plan_table,
    retain_hours,
)


def test_retention_plan_keeps_the_oldest_referenced_version():
    """Pure: the horizon is the oldest referenced commit minus the margin, and Delta's own
    retentions are raised (never lowered) when the referenced version is older than them."""
    now = 1_000 * DAY_MS
    plain = plan_table(TableState("t", 5), now, 168.0, 1.0)
    assert (plain.min_hours, plain.referenced_horizon_ms, plain.properties) == (168, None, {})
    recent = plan_table(TableState("t", 9, {3: now - 2 * HOUR_MS, 7: now - HOUR_MS}), now, 0.0, 1.0)
    assert recent.referenced_horizon_ms == now - 3 * HOUR_MS and recent.oldest_referenced == 3
    assert recent.properties == {}
    old = plan_table(TableState("t", 9, {3: now - 40 * DAY_MS}), now, 168.0, 1.0)
    assert old.referenced_horizon_ms == now - 40 * DAY_MS - HOUR_MS
    assert old.properties == {
        "delta.deletedFileRetentionDuration": f"interval {math.ceil(40 + 1 / 24) + 7} days",
        "delta.logRetentionDuration": f"interval {math.ceil(40 + 1 / 24) + 7} days",
    }
    raised = TableState("t", 9, {3: now - 40 * DAY_MS}, deleted_file_retention_days=60, log_retention_days=60)
    assert plan_table(raised, now, 168.0, 1.0).properties == {}


def test_vacuum_hours_round_up_so_the_horizon_is_never_passed():
    """Delta rounds RETAIN to the nearest hour; 0.4 h would become 0 and vacuum the version. The
    fixed minimum does not grow with the time that passes before VACUUM runs."""
    now = 1_000 * DAY_MS
    unreferenced = plan_table(TableState("t", 5), now, 0.0, 0.0)
    assert retain_hours(now + 5_000, unreferenced) == 0
    assert retain_hours(now + 5_000, plan_table(TableState("t", 5), now, 168.0, 0.0)) == 168
    referenced = plan_table(TableState("t", 9, {3: now - int(0.4 * HOUR_MS)}), now, 0.0, 0.0)
    assert retain_hours(now, referenced) == 1
    assert retain_hours(now + 2 * HOUR_MS, referenced) == 3
    assert retain_hours(now, plan_table(TableState("t", 9, {3: now - HOUR_MS}), now, 168.0, 0.0)) == 168


def test_delta_interval_properties_are_read_in_days():
    assert _interval_days(None, 7) == 7
    assert _interval_days("interval 30 days", 7) == 30
    assert _interval_days("interval 2 weeks", 7) == 14
    assert _interval_days("interval 36 hours", 7) == 1.5
    assert _interval_days("nonsense", 7) == 7
