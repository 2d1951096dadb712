"""Bronze on hostile landing folders, with the real Spark session and catalog (issue 10).

Each test lands files in its own data folder (the tables are this module's) and checks, per
file, where every line went: file names that are Hadoop globs or URI syntax, symlinks that
leave the landing folder, and bytes that are not clean UTF-8 JSON lines.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime

import pytest

from athlete_platform.lakehouse import tables
from tests import device_file_factory as devices
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration

RUN_DATE = date(2030, 1, 1)
MAX_LINE_BYTES = 1 << 20  # the line limit bronze documents (1 MiB)
QUARANTINE_HEAD_BYTES = 4096  # what bronze.quarantine keeps of a too-long line


def data_folder(settings, tmp_path, name: str):
    """Settings whose data folder (and so landing folder) is a fresh folder under tmp_path."""
    own = settings.model_copy(update={"data_dir": tmp_path / name})
    (own.landing_path / "app_export").mkdir(parents=True)
    (own.landing_path / "devices").mkdir(parents=True)
    return own


def athlete_line(athlete_id: str) -> str:
    return json.dumps({"record_type": "athlete", "athlete_id": athlete_id})


def by_path(spark, table: str, column: str, prefix: str) -> list:
    """Rows of `table` whose `column` starts with `prefix` (compared in Python: no SQL escaping)."""
    return [r for r in spark.table(table).collect() if (r[column] or "").startswith(prefix)]


def test_app_export_names_that_are_globs_or_uri_syntax_are_read_as_literal_paths(
    spark, names, settings, tmp_path, module_lake
):
    """Hadoop read `export[1].jsonl` as a glob (no match: all of bronze failed) and `a:b` as a URI;
    every name here is read as the file it is, and bronze records exactly that path."""
    own = data_folder(settings, tmp_path, "data [zone] 100%+ #1 é:x")
    export_dir = own.landing_path / "app_export"
    file_names = [
        "export[1].jsonl",
        "export1.jsonl",  # what the glob export[1].jsonl matches instead
        "export 2024-12-31T10:00.jsonl",
        "2024-12-3*.jsonl",
        "2024-12-30.jsonl",  # matched by the glob above
        "a?b#c%20+d {x,y} é ü 日本.jsonl",
        "it's \\ back.jsonl",
    ]
    for i, name in enumerate(file_names):
        (export_dir / name).write_text(athlete_line(f"ath_name_{i}") + "\nnot json\n", encoding="utf-8")
    device_dir = own.landing_path / "devices" / "ath_0001"
    device_dir.mkdir()
    devices.write_gpx(device_dir / "after the exports.gpx", start=datetime(2024, 3, 3, 7, 0, tzinfo=UTC))

    counts = module_lake.run("ingest", RUN_DATE, "run-names", settings=own)

    assert counts.reconciles
    assert counts.files == len(file_names) + 1  # the device file is not blocked
    prefix = str(own.landing_path) + "/"
    tracked = {r.path: r for r in by_path(spark, names(tables.LANDING_FILES), "path", prefix)}
    expected = {str(export_dir / name) for name in file_names}
    assert set(tracked) == expected  # plain paths, round-tripped exactly
    assert all((r.lines, r.accepted, r.quarantined) == (2, 1, 1) for r in tracked.values())
    raw = by_path(spark, names(tables.SESSIONS_RAW), "_source_file", prefix)
    by_file = {r._source_file: json.loads(r.payload)["athlete_id"] for r in raw if r.record_type == "athlete"}
    assert by_file == {str(export_dir / name): f"ath_name_{i}" for i, name in enumerate(file_names)}
    quarantined = by_path(spark, names(tables.QUARANTINE), "source_file", prefix)
    assert sorted(r.source_file for r in quarantined) == sorted(expected)
    device = by_path(spark, names(tables.DEVICE_FILES), "path", prefix)
    assert [(r.status, r.athlete_id) for r in device] == [("ingested", "ath_0001")]

    again = module_lake.run("ingest", RUN_DATE, "run-names-2", settings=own)
    assert again.files == 0  # every one of them is known by its plain path


def test_symlinks_never_lead_out_of_the_landing_folder(spark, names, settings, tmp_path, module_lake):
    """A link out of landing/ (file or folder) is quarantined with its reason and never read; a link
    that stays inside is read, and a device file's athlete is the link's own folder."""
    own = data_folder(settings, tmp_path, "data")
    landing = own.landing_path
    outside = tmp_path / "outside"
    (outside / "ath_0001").mkdir(parents=True)
    (outside / "secret.jsonl").write_text(athlete_line("ath_outside") + "\n")
    devices.write_gpx(outside / "ath_0001" / "run.gpx", start=datetime(2024, 3, 1, 7, 0, tzinfo=UTC))
    shared = landing / "shared"
    (shared / "ath_9999").mkdir(parents=True)
    (shared / "ath_9998").mkdir(parents=True)
    (shared / "day.jsonl").write_text(athlete_line("ath_inside") + "\n")
    devices.write_gpx(shared / "ath_9999" / "ride.gpx", start=datetime(2024, 3, 2, 7, 0, tzinfo=UTC))
    devices.write_gpx(shared / "ath_9998" / "other.gpx", start=datetime(2024, 3, 4, 7, 0, tzinfo=UTC))

    export = landing / "app_export"
    escaping = {
        "hostname.jsonl": "/etc/hostname",
        "environ.jsonl": "/proc/self/environ",
        "secret.jsonl": str(outside / "secret.jsonl"),
        "relative-escape.jsonl": "../../../outside/secret.jsonl",
    }
    for name, target in escaping.items():
        os.symlink(target, export / name)
    os.symlink("../shared/day.jsonl", export / "inside-link.jsonl")
    dev = landing / "devices"
    (dev / "ath_0005").mkdir()
    os.symlink(outside / "ath_0001" / "run.gpx", dev / "ath_0005" / "stolen.gpx")
    os.symlink(outside / "ath_0001", dev / "ath_0006")  # a folder outside: not even listed
    os.symlink("../shared/ath_9999", dev / "ath_0007")  # a folder inside
    (dev / "ath_0008").mkdir()
    os.symlink("../../shared/ath_9998/other.gpx", dev / "ath_0008" / "linked.gpx")
    os.symlink("..", dev / "ath_0008" / "loop")  # a cycle inside: walked once

    counts = module_lake.run("ingest", RUN_DATE, "run-links", settings=own)
    assert counts.reconciles

    prefix = str(landing) + "/"
    files = {r.path: r for r in by_path(spark, names(tables.LANDING_FILES), "path", prefix)}
    for name in escaping:
        row = files[str(export / name)]
        assert (row.lines, row.accepted, row.quarantined) == (1, 0, 1), name
    assert (files[str(export / "inside-link.jsonl")].accepted, len(files)) == (1, len(escaping) + 1)

    payloads = [r.payload for r in spark.table(names(tables.SESSIONS_RAW)).collect()]
    assert not any("ath_outside" in p for p in payloads)
    quarantine = {r.source_file: r for r in by_path(spark, names(tables.QUARANTINE), "source_file", prefix)}
    hostname = open("/etc/hostname").read().strip()  # noqa: SIM115 - the test may read it, bronze may not
    for name in escaping:
        row = quarantine[str(export / name)]
        assert "outside the landing folder" in row.reason and row.record_key == "file"
        assert "ath_outside" not in row.payload and (not hostname or hostname not in row.payload)

    device_rows = {r.path: r for r in by_path(spark, names(tables.DEVICE_FILES), "path", prefix)}
    stolen = device_rows[str(dev / "ath_0005" / "stolen.gpx")]
    assert stolen.status == "quarantined" and "outside the landing folder" in stolen.error
    folder = device_rows[str(dev / "ath_0006")]
    assert folder.status == "quarantined" and "outside the landing folder" in folder.error
    assert not any(r.athlete_id == "ath_0001" for r in device_rows.values())
    ingested = {r.athlete_id: r.path for r in device_rows.values() if r.status == "ingested"}
    assert ingested == {
        "ath_0007": str(dev / "ath_0007" / "ride.gpx"),
        "ath_0008": str(dev / "ath_0008" / "linked.gpx"),
    }
    raw = spark.table(names(tables.SESSIONS_RAW)).collect()
    device_payloads = [json.loads(r.payload) for r in raw if r._source_file in ingested.values()]
    assert sorted(p["athlete_id"] for p in device_payloads) == ["ath_0007", "ath_0008"]


def test_every_line_is_accepted_or_quarantined_whatever_its_bytes(spark, names, settings, tmp_path, module_lake):
    """BOM, a 10 MB line, a 20 MB file of one line, invalid UTF-8, mixed encodings, control
    characters, NUL bytes, an empty file: no crash, and lines = accepted + quarantined per file."""
    own = data_folder(settings, tmp_path, "data")
    export = own.landing_path / "app_export"
    good = athlete_line("ath_bytes").encode()
    long_line = b'{"record_type": "session", "notes": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    files = {
        "bom.jsonl": (b"\xef\xbb\xbf" + good + b"\n" + good + b"\n", (2, 2, 0)),
        "crlf.jsonl": (good + b"\r\n" + good + b"\r\n", (2, 2, 0)),
        "long.jsonl": (good + b"\n" + long_line + b"\n" + good + b"\n", (3, 2, 1)),
        "huge-one-line.jsonl": (b"[" + b"0," * (10 * 1024 * 1024) + b"0]", (1, 0, 1)),
        "utf8.jsonl": (
            good
            + b"\n"
            + b'{"record_type": "athlete", "athlete_id": "caf\xe9"}\n'  # Latin-1 in a UTF-8 file
            + b'{"record_type": "athlete", "athlete_id": "\xff\xfe"}\n'
            + '{"record_type": "athlete", "athlete_id": "émoji 🏃"}\n'.encode(),
            (4, 2, 2),
        ),
        "utf16.jsonl": (athlete_line("ath_utf16").encode("utf-16"), (1, 0, 1)),
        "control.jsonl": (
            b'{"record_type": "athlete", "athlete_id": "a\x01b"}\n'
            + b'{"record_type": "athlete", "athlete_id": "a\x00b"}\n'
            + b'\x00{"record_type": "athlete", "athlete_id": "ab"}\n'
            + b'{"record_type": "athlete", "athlete_id": "a\\u0000b"}\n',  # escaped: valid JSON
            (4, 1, 3),
        ),
        "empty.jsonl": (b"", (0, 0, 0)),
    }
    for name, (data, _) in files.items():
        (export / name).write_bytes(data)

    counts = module_lake.run("ingest", RUN_DATE, "run-bytes", settings=own)

    assert counts.reconciles and counts.files == len(files)
    prefix = str(own.landing_path) + "/"
    tracked = {r.path.rsplit("/", 1)[-1]: r for r in by_path(spark, names(tables.LANDING_FILES), "path", prefix)}
    assert {name: (r.lines, r.accepted, r.quarantined) for name, r in tracked.items()} == {
        name: expected for name, (_, expected) in files.items()
    }
    quarantine = by_path(spark, names(tables.QUARANTINE), "source_file", prefix)
    reasons = {(r.source_file.rsplit("/", 1)[-1], r.record_key): r for r in quarantine}
    too_long = reasons[("long.jsonl", "line 2")]
    assert str(MAX_LINE_BYTES) in too_long.reason and len(too_long.payload.encode()) <= QUARANTINE_HEAD_BYTES
    assert str(MAX_LINE_BYTES) in reasons[("huge-one-line.jsonl", "line 1")].reason
    assert reasons[("utf8.jsonl", "line 2")].reason.startswith("invalid_utf8")
    assert reasons[("utf16.jsonl", "line 1")].reason.startswith("invalid_utf8")
    assert all(reasons[("control.jsonl", f"line {n}")].reason.startswith("control_character") for n in (1, 2, 3))
    raw = by_path(spark, names(tables.SESSIONS_RAW), "_source_file", prefix)
    athletes = sorted(json.loads(r.payload)["athlete_id"] for r in raw)
    assert athletes == sorted(["ath_bytes"] * 7 + ["émoji 🏃", "a\x00b"])
