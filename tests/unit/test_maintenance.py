"""The maintenance step's retention plan and what it skips (no JVM: tables written by delta-rs; the
Spark side is in tests/integration/test_storage.py)."""

from __future__ import annotations

import math
from pathlib import Path

from athlete_platform.lakehouse.delta import local_folder
from athlete_platform.lakehouse.delta_rs import live_files
from athlete_platform.lakehouse.maintenance import (
    DAY_MS,
    HOUR_MS,
    TableState,
    _interval_days,
    nothing_to_compact,
    plan_table,
    retain_hours,
    vacuum_candidates,
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


def _delta_table(folder, partitioned: bool = False):
    """A real Delta table written by delta-rs (no JVM): two appends, so two data files."""
    import pyarrow as pa
    from deltalake import write_deltalake

    for day in ("2024-01-01", "2024-01-02"):
        data = pa.table({"day": [day], "value": [1.0]})
        write_deltalake(str(folder), data, mode="append", partition_by=["day"] if partitioned else None)
    return live_files(folder)


def test_a_table_with_two_files_in_a_partition_has_something_to_compact(tmp_path):
    live = _delta_table(tmp_path / "t")
    assert len(live.paths) == 2 and live.files_per_partition == (2,)
    assert not nothing_to_compact(live)
    one_per_day = _delta_table(tmp_path / "p", partitioned=True)
    assert sorted(one_per_day.files_per_partition) == [1, 1]
    assert nothing_to_compact(one_per_day)
    assert not nothing_to_compact(None)  # unknown: OPTIMIZE runs
    assert live_files(tmp_path / "not-a-table") is None


def test_vacuum_candidates_are_unreferenced_files_older_than_the_cutoff(tmp_path):
    """Only what VACUUM could delete counts: a referenced file never does, an unreferenced one
    (a replaced file, a crash's leftover) once it was last modified before the cutoff; a Hadoop
    checksum file goes with its data file; the Delta log is never listed."""
    import os

    from deltalake import DeltaTable

    folder = tmp_path / "t"
    live = _delta_table(folder)
    now_s = max(os.stat(p).st_mtime for p in live.paths)
    for path in live.paths:  # checksum files of live files, as Hadoop's local file system writes them
        crc = Path(path).with_name(f".{Path(path).name}.crc")
        crc.write_bytes(b"")
        os.utime(crc, (now_s - 2 * 3600, now_s - 2 * 3600))
    assert vacuum_candidates(folder, live, cutoff_ms=int((now_s + 3600) * 1000)) == []

    DeltaTable(str(folder)).optimize.compact()  # two files -> one; the two are tombstoned
    compacted = live_files(folder)
    assert len(compacted.paths) == 1 and not compacted.paths & live.paths
    replaced = set(live.paths) | {str(Path(p).with_name(f".{Path(p).name}.crc")) for p in live.paths}
    assert set(map(str, vacuum_candidates(folder, compacted, int((now_s + 3600) * 1000)))) == replaced
    assert vacuum_candidates(folder, compacted, int((now_s - 3 * 3600) * 1000)) == []  # all younger than the cutoff

    stray = folder / "part-00000-left-by-a-crash.parquet"
    stray.write_bytes(b"x")
    os.utime(stray, (now_s - 8 * 24 * 3600, now_s - 8 * 24 * 3600))
    assert vacuum_candidates(folder, compacted, int((now_s - 3 * 3600) * 1000)) == [stray]


def test_only_local_locations_are_listed():
    assert local_folder("file:/data/warehouse/silver.db/sessions") == Path("/data/warehouse/silver.db/sessions")
    assert local_folder("file:///data/a%20b/t") == Path("/data/a b/t")
    assert local_folder("/data/t") == Path("/data/t")
    assert local_folder("s3a://bucket/warehouse/t") is None
