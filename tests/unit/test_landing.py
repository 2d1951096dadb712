"""The landing folder as a confinement boundary, and line reading by bytes (no Spark)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from athlete_platform.ingestion.landing import (
    MAX_LINE_BYTES,
    QUARANTINE_HEAD_BYTES,
    LandingRefused,
    list_landing,
    open_confined,
    read_lines,
)


def lines_of(data: bytes) -> list[tuple[int, str, str | None]]:
    return [(x.line_number, x.line, x.read_error) for x in read_lines(io.BytesIO(data))]


def test_a_bom_is_dropped_and_blank_lines_keep_their_number():
    data = b'\xef\xbb\xbf{"a": 1}\r\n\n  \t\r\n{"b": 2}'
    assert lines_of(data) == [(1, '{"a": 1}', None), (4, '{"b": 2}', None)]


def test_a_bom_later_in_the_file_is_left_in_the_line():
    assert lines_of(b'{"a": 1}\n\xef\xbb\xbf{"b": 2}\n')[1] == (2, '\ufeff{"b": 2}', None)


def test_a_line_over_the_limit_is_reported_with_its_size_and_a_truncated_head():
    exactly = b"x" * MAX_LINE_BYTES
    over = b"y" * (10 * MAX_LINE_BYTES)
    result = lines_of(exactly + b"\r\n" + over + b"\n" + b'{"c": 3}\n' + b"z" * (MAX_LINE_BYTES + 1))
    assert [(n, err is None) for n, _, err in result] == [(1, True), (2, False), (3, True), (4, False)]
    assert result[0][1] == exactly.decode()
    _, head, error = result[1]
    assert head == "y" * QUARANTINE_HEAD_BYTES
    assert error.startswith(f"line_too_long: {len(over)} bytes") and str(MAX_LINE_BYTES) in error
    assert result[2][1] == '{"c": 3}'
    assert result[3][2].startswith(f"line_too_long: {MAX_LINE_BYTES + 1} bytes")


def test_invalid_utf8_is_reported_with_the_bytes_visible():
    result = lines_of(b'{"a": "caf\xe9"}\n{"a": "caf\xc3\xa9"}\n')
    assert result[0] == (1, '{"a": "caf\\xe9"}', "invalid_utf8: byte 0xe9 at byte 10 of the line (files must be UTF-8)")
    assert result[1] == (2, '{"a": "café"}', None)


def test_an_empty_file_has_no_lines():
    assert lines_of(b"") == []


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "landing"
    (root / "app_export").mkdir(parents=True)
    (root / "devices" / "ath_1").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jsonl").write_text("secret\n")
    return root


def test_links_out_of_landing_are_refused_and_links_inside_are_followed(landing: Path, tmp_path: Path):
    export = landing / "app_export"
    (export / "day.jsonl").write_text("{}\n")
    (export / "notes.txt").symlink_to(tmp_path / "outside" / "secret.jsonl")  # not *.jsonl: not touched
    (export / "out.jsonl").symlink_to(tmp_path / "outside" / "secret.jsonl")
    (export / "rel.jsonl").symlink_to("../../../outside/secret.jsonl")
    (export / "in.jsonl").symlink_to("day.jsonl")
    (export / "dangling.jsonl").symlink_to("nowhere.jsonl")
    os.mkfifo(export / "fifo.jsonl")
    entries = {Path(e.path).name: e for e in list_landing(landing, "app_export", recursive=False, suffix=".jsonl")}
    assert set(entries) == {"day.jsonl", "out.jsonl", "rel.jsonl", "in.jsonl", "dangling.jsonl", "fifo.jsonl"}
    assert entries["out.jsonl"].refusal.startswith("symlink leads outside the landing folder")
    assert entries["rel.jsonl"].refusal.startswith("symlink leads outside the landing folder")
    assert entries["rel.jsonl"].link_target == "../../../outside/secret.jsonl"
    assert entries["in.jsonl"].refusal is None and entries["in.jsonl"].path == str(export / "in.jsonl")
    assert entries["dangling.jsonl"].refusal.startswith("cannot be read")
    assert entries["fifo.jsonl"].refusal.startswith("not a regular file")
    for name in ("out.jsonl", "fifo.jsonl"):
        with pytest.raises(LandingRefused):
            open_confined(entries[name], landing)
    with open_confined(entries["in.jsonl"], landing) as handle:
        assert handle.read() == b"{}\n"


def test_device_folders_keep_the_links_own_folder_and_never_list_outside(landing: Path, tmp_path: Path):
    devices = landing / "devices"
    shared = landing / "shared" / "ath_real"
    shared.mkdir(parents=True)
    (shared / "run.gpx").write_text("<gpx/>")
    (tmp_path / "outside" / "ath_x").mkdir()
    (tmp_path / "outside" / "ath_x" / "stolen.gpx").write_text("<gpx/>")
    (devices / "ath_link").symlink_to("../shared/ath_real")
    (devices / "ath_out").symlink_to(tmp_path / "outside" / "ath_x")
    (devices / "ath_1" / "file.gpx").symlink_to(tmp_path / "outside" / "ath_x" / "stolen.gpx")
    (devices / "ath_1" / "loop").symlink_to("..")
    entries = {e.path: e for e in list_landing(landing, "devices", recursive=True)}
    root = str(devices.resolve())
    assert entries[f"{root}/ath_link/run.gpx"].folder == "ath_link"
    assert entries[f"{root}/ath_link/run.gpx"].refusal is None
    assert entries[f"{root}/ath_out"].refusal.startswith("symlink leads outside the landing folder")
    assert entries[f"{root}/ath_1/file.gpx"].refusal.startswith("symlink leads outside the landing folder")
    assert not any("stolen" in path for path in entries)  # the outside folder was never listed
    # the cycle is walked once: each real folder appears under one path only
    assert len(entries) == 3


def test_a_landing_subfolder_that_is_a_link_out_is_refused_without_listing(landing: Path, tmp_path: Path):
    (landing / "app_export").rmdir()
    (landing / "app_export").symlink_to(tmp_path / "outside")
    entries = list_landing(landing, "app_export", recursive=False, suffix=".jsonl")
    assert [(Path(e.path).name, e.refusal is not None) for e in entries] == [("app_export", True)]


def test_a_file_name_that_is_not_utf8_is_refused_and_shown_escaped(landing: Path):
    name = os.fsdecode(b"bad-\xff.jsonl")
    (landing / "app_export" / name).write_text("{}\n")
    [entry] = list_landing(landing, "app_export", recursive=False, suffix=".jsonl")
    assert entry.path.endswith("bad-\\xff.jsonl") and entry.refusal.startswith("file name is not valid UTF-8")
    entry.path.encode("utf-8")  # storable as text
