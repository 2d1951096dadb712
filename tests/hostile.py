"""A seeded generator of hostile landing input: poison records and files, for the reliability suite.

`land_hostile(landing, seed, outside)` writes app-export files of mostly bad lines (every
class issue 10 names, and more) and hostile device files into a landing folder, and returns
what it wrote. Only the data folder is written; `outside` is a folder outside it holding a
"secret" that symlinks point to: its content must never show up in a table.

Every record is keyed (`h-<n>`), so a test can tell where each one went.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from tests import device_file_factory as devices

SECRET = "hostile-secret-must-never-be-ingested"

# (field, bad value as raw JSON text): each one breaks a field rule or a row rule.
BAD_VALUES: tuple[tuple[str, str], ...] = (
    ("start_time", "1735628400"),
    ("start_time", '"not-a-date"'),
    ("start_time", '"2024-13-45T07:00:00Z"'),
    ("start_time", '"0001-01-01T07:00:00Z"'),
    ("start_time", '"1900-01-01T07:00:00Z"'),
    ("start_time", '"2999-01-01T07:00:00Z"'),
    ("start_time", '"2024-02-30T07:00:00Z"'),
    ("start_time", '"2024-06-01T25:00:00Z"'),
    ("start_time", '""'),
    ("start_time", "null"),
    ("start_time", "[]"),
    ("duration_s", '"Infinity"'),
    ("duration_s", "1e400"),
    ("duration_s", "-1e400"),
    ("duration_s", "NaN"),
    ("duration_s", "1e308"),
    ("duration_s", "31536000"),
    ("duration_s", "0"),
    ("duration_s", "-3600"),
    ("duration_s", '"3600"'),
    ("duration_s", "true"),
    ("distance_m", "-1"),
    ("distance_m", "1" + "0" * 400),
    ("distance_m", '{"km": 10}'),
    ("distance_m", "Infinity"),
    ("elevation_gain_m", "NaN"),
    ("elevation_gain_m", "1e12"),
    ("elevation_gain_m", "-1e12"),
    ("avg_hr", '"140"'),
    ("avg_hr", "300"),
    ("avg_hr", "-5"),
    ("max_hr", "30"),
    ("max_hr", "false"),
    ("rpe", "-7"),
    ("rpe", "4.5"),
    ("rpe", "11"),
    ("rpe", '"hard"'),
    ("is_race", '"yes"'),
    ("is_race", "1"),
    ("sport", '"yoga"'),
    ("sport", "42"),
    ("sport", "null"),
    ("session_id", "null"),
    ("session_id", '""'),
    ("session_id", '"  padded  "'),
    ("session_id", '"tab\\tinside"'),
    ("session_id", json.dumps("x" * 300)),
    ("athlete_id", '"ath_ghost"'),
    ("athlete_id", "7"),
    ("notes", json.dumps("n" * 20_000)),
    ("updated_at", '"9999-12-31T00:00:00Z"'),
    ("updated_at", '"2150-01-01T00:00:00Z"'),
    ("updated_at", '"yesterday"'),
)

# Whole lines that are not one JSON object (bronze quarantines them).
BAD_LINES: tuple[str, ...] = (
    "{",
    "}{",
    "[]",
    "null",
    '"a string"',
    "42",
    '{"record_type": "session"} trailing text',
    '{"record_type": "session", "session_id": "dup", "session_id": "dup2"}',
    '{"record_type": "alien"}',
    '{"no_record_type": true}',
    "<html><body>502</body></html>",
    "\x00\x00\x00",
    "\x1b[31mred\x1b[0m",
    "[" * 50_000 + "]" * 50_000,
    '{"record_type": "session", "session_id": "bad-escape", "notes": "\\ud800"}',
)


@dataclass
class HostileLanding:
    """What `land_hostile` wrote: record keys per file, and the files meant to be refused whole."""

    app_files: list[Path] = field(default_factory=list)
    device_files: list[Path] = field(default_factory=list)
    symlinks: list[Path] = field(default_factory=list)
    records: int = 0  # lines written to app-export files (records + bad lines)

    @property
    def inputs(self) -> int:
        """Lines, device files and links landed: what must all be accounted for."""
        return self.records + len(self.device_files) + len(self.symlinks)


def _session(valid: dict, key: str, *bad: tuple[str, str]) -> str:
    """A valid session record keyed `key`, with each (field, raw JSON value) of `bad` spliced in."""
    record = dict(valid, session_id=key, hostile_key=key)  # an extra field silver ignores: finds the record anywhere
    for field_name, _ in bad:
        record.pop(field_name, None)
    text = json.dumps(record, ensure_ascii=False)
    return text[:-1] + "".join(f', "{name}": {raw}' for name, raw in bad) + "}"


def land_hostile(landing: Path, seed: int, outside: Path, athlete_id: str, day: str) -> HostileLanding:
    """Write ≥ 300 hostile records and a dozen hostile files into `landing` (seeded, repeatable).

    `athlete_id` is a real athlete (so a record fails only the rule it was built to fail) and
    `day` an ISO date the good parts of each record fall on.
    """
    rng = random.Random(seed)
    app, dev = landing / "app_export", landing / "devices" / athlete_id
    app.mkdir(parents=True, exist_ok=True)
    dev.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.jsonl").write_text(json.dumps({"record_type": "session", "session_id": SECRET}) + "\n")
    (outside / "secret.gpx").write_text(f"<gpx><trk><name>{SECRET}</name></trk></gpx>")
    out = HostileLanding()
    valid = {
        "record_type": "session",
        "athlete_id": athlete_id,
        "sport": "run",
        "start_time": f"{day}T07:00:00Z",
        "duration_s": 3000,
        "distance_m": 9000.0,
        "elevation_gain_m": 40.0,
        "avg_hr": 145,
        "max_hr": 170,
        "rpe": 5,
        "notes": "hostile-suite",
        "is_race": False,
        "source": "app",
        "updated_at": f"{day}T09:00:00Z",
    }
    lines: list[str] = []
    for n in range(320):  # every bad value at least five times, in seeded combinations
        bad = [BAD_VALUES[n % len(BAD_VALUES)]]
        second = rng.choice(BAD_VALUES)
        if rng.random() < 0.2 and second[0] != bad[0][0]:  # a second broken field in the same record
            bad.append(second)
        lines.append(_session(valid, f"h-{n:04d}", *bad))
    lines += list(BAD_LINES)
    lines.append(_session(dict(valid, notes="🏃‍♀️ 漢字 ünïcödé"), "h-emoji"))
    rng.shuffle(lines)

    file_names = [
        "hostile[1].jsonl",
        "hostile 2024-12-31T10:00.jsonl",
        "2024-12-3*.jsonl",
        "h?.jsonl",
        "h%41+b#c.jsonl",
    ]
    chunks = [lines[i :: len(file_names)] for i in range(len(file_names))]
    for name, chunk in zip(file_names, chunks, strict=True):
        path = app / name
        path.write_text("\n".join(chunk) + "\n", encoding="utf-8")
        out.app_files.append(path)
        out.records += len(chunk)
    bom = app / "bom.jsonl"  # a UTF-8 byte-order mark before the first record
    bom.write_bytes(b"\xef\xbb\xbf" + _session(valid, "h-bom").encode() + b"\n")
    latin = app / "latin1.jsonl"  # mixed encodings: one valid UTF-8 line, one Latin-1 line
    latin_line = _session(dict(valid, notes="caf\xe9"), "h-latin1").encode("latin-1")
    latin.write_bytes(_session(valid, "h-utf8").encode() + b"\n" + latin_line + b"\n")
    huge_line = app / "huge-line.jsonl"  # one 10 MB line
    huge_line.write_text(_session(valid, "h-huge", ("notes", json.dumps("z" * 10_000_000))) + "\n")
    empty = app / "empty.jsonl"
    empty.write_bytes(b"")
    blank = app / "blank.jsonl"
    blank.write_text("\n\n   \n")
    crlf = app / "crlf.jsonl"
    crlf.write_bytes(_session(valid, "h-crlf").encode() + b"\r\n")
    for path, n_records in ((bom, 1), (latin, 2), (huge_line, 1), (empty, 0), (blank, 0), (crlf, 1)):
        out.app_files.append(path)
        out.records += n_records

    # Device files: garbage, truncated, XXE, billion laughs, wrong extension, empty.
    devices.write_garbage(dev / "noise.fit", size=4096, seed=seed)
    devices.write_garbage(dev / "noise.gpx", size=2048, seed=seed + 1, text=True)
    devices.write_gpx(dev / "cut.gpx", start=_start(day))
    devices.truncate(dev / "cut.gpx", 0.4)
    (dev / "xxe.gpx").write_text(
        '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]><gpx>&x;</gpx>'
    )
    (dev / "laughs.tcx").write_text(
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><l>&d;</l>'
    )
    (dev / "empty.fit").write_bytes(b"")
    (dev / "notes.txt").write_text("not a device file")
    names = ("noise.fit", "noise.gpx", "cut.gpx", "xxe.gpx", "laughs.tcx", "empty.fit", "notes.txt")
    out.device_files += [dev / n for n in names]

    # Symlinks that lead out of the landing folder: never followed.
    for link, target in (
        (app / "escape.jsonl", outside / "secret.jsonl"),
        (dev / "escape.gpx", outside / "secret.gpx"),
        (landing / "devices" / "linked-dir", outside),
    ):
        link.symlink_to(target)
        out.symlinks.append(link)
    return out


def _start(day: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(f"{day}T06:00:00").replace(tzinfo=UTC)
