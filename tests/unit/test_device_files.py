"""Tests for athlete_platform.ingestion.device_files (FIT / TCX / GPX summaries).

Files are written by tests/device_file_factory.py; each writer returns the totals
that are actually in the file. Tolerances, and why:

* start time, duration: exact. The writer uses whole seconds and every format stores
  whole seconds (FIT total_timer_time is in ms).
* distance, FIT and TCX: 1 cm. Both carry the device distance explicitly, rounded
  to centimetres by the writer (FIT's distance resolution).
* distance, GPX: 0.3 %. GPX has no distance, only positions; gpxpy's planar
  approximation uses the equatorial radius (6378.137 km) while the writer lays the
  track on the mean-radius sphere (6371.009 km): a +0.11 % bias, plus < 0.01 % from
  the planar approximation over 6-16 m steps.
* elevation gain: exact (1e-6) where it is summed from samples (TCX, FIT records);
  0.5 m from a FIT session (total_ascent is whole metres); 1 % for GPX, because
  gpxpy smooths altitudes over 3 points before summing, which clips the rolling
  hills' peaks (80-sample period) by well under 1 %.
* heart rate: exact (1e-9) where averaged from samples; 0.5 bpm from a FIT session
  (avg_heart_rate is a whole number of bpm).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from athlete_platform.errors import PlatformError
from athlete_platform.ingestion.device_files import (
    DeviceFileError,
    DeviceSession,
    detect_format,
    normalise_sport,
    parse_device_file,
    sha256_of,
)
from tests.device_file_factory import (
    WrittenActivity,
    flip_byte,
    truncate,
    write_fit,
    write_garbage,
    write_gpx,
    write_tcx,
)

START = datetime(2024, 3, 31, 0, 59, 47, tzinfo=UTC)
WRITERS = {"fit": write_fit, "tcx": write_tcx, "gpx": write_gpx}
FORMATS = sorted(WRITERS)


def _write(fmt: str, directory: Path, name: str = "activity", **kwargs: object) -> WrittenActivity:
    return WRITERS[fmt](directory / f"{name}.{fmt}", START, **kwargs)


def _raises(path: Path) -> str:
    with pytest.raises(DeviceFileError) as info:
        parse_device_file(path)
    return str(info.value)


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.fit", "fit"),
        ("B.FIT", "fit"),
        ("c.Tcx", "tcx"),
        ("d.gpx", "gpx"),
        ("e.GpX", "gpx"),
        ("dir.gpx/f.tcx", "tcx"),
    ],
)
def test_detect_format_by_extension_ignoring_case(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


@pytest.mark.parametrize("name", ["a.csv", "a.fit.zip", "noext", "a.kml", ".gpx"])
def test_detect_format_unknown_extension_raises(name: str) -> None:
    with pytest.raises(DeviceFileError, match="unsupported file extension"):
        detect_format(Path(name))


def test_parse_unknown_extension_raises_even_for_valid_content(tmp_path: Path) -> None:
    written = _write("gpx", tmp_path)
    renamed = written.path.rename(tmp_path / "activity.xml")
    message = _raises(renamed)
    assert "unsupported file extension '.xml'" in message


def test_a_bad_device_file_is_reported_as_a_platform_error(tmp_path: Path) -> None:
    # The CLI and the jobs report PlatformError as a user error (no traceback).
    path = tmp_path / "junk.fit"
    write_garbage(path)
    with pytest.raises(PlatformError, match="^fit: not a FIT file"):
        parse_device_file(path)


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_matches_what_was_written(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path, n_points=300, step_s=2)
    session = parse_device_file(written.path)

    assert session.file_format == fmt
    assert session.sport == "run"
    assert session.start_time == START
    assert session.start_time.utcoffset() == timedelta(0)
    assert session.duration_s == pytest.approx(598.0, abs=1e-6)
    assert session.duration_s == pytest.approx(written.duration_s, abs=1e-6)

    if fmt == "gpx":
        assert session.distance_m == pytest.approx(written.distance_m, rel=3e-3)
        assert session.elevation_gain_m == pytest.approx(written.elevation_gain_m, rel=1e-2)
    elif fmt == "fit":  # session totals: whole metres for ascent
        assert session.distance_m == pytest.approx(written.distance_m, abs=0.011)
        assert session.elevation_gain_m == pytest.approx(written.elevation_gain_m, abs=0.5)
    else:
        assert session.distance_m == pytest.approx(written.distance_m, abs=0.011)
        assert session.elevation_gain_m == pytest.approx(written.elevation_gain_m, abs=1e-6)

    assert written.avg_hr is not None and written.max_hr is not None
    hr_tol = 0.5 if fmt == "fit" else 1e-9
    assert session.avg_hr == pytest.approx(written.avg_hr, abs=hr_tol)
    assert session.max_hr == pytest.approx(written.max_hr, abs=1e-9)


def test_written_track_is_realistic(tmp_path: Path) -> None:
    """Guard the factory: the round trip is only meaningful if the track has substance."""
    written = write_gpx(tmp_path / "track.gpx", START, n_points=300, step_s=2)
    assert 1500 < written.distance_m < 2500  # ~3.2 m/s for ~10 minutes
    assert written.elevation_gain_m > 50
    assert written.avg_hr is not None and 120 < written.avg_hr < written.max_hr  # type: ignore[operator]
    assert len({p.heart_rate for p in written.points}) > 10


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_other_length_and_step(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path, n_points=451, step_s=5)
    session = parse_device_file(written.path)
    assert session.start_time == START
    assert session.duration_s == pytest.approx(450 * 5, abs=1e-6)
    rel = 3e-3 if fmt == "gpx" else 1e-5
    assert session.distance_m == pytest.approx(written.distance_m, rel=rel)


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_heart_rate_hr_is_none(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path, with_hr=False)
    session = parse_device_file(written.path)
    assert session.avg_hr is None
    assert session.max_hr is None
    assert session.duration_s == pytest.approx(written.duration_s)


def test_fit_without_session_falls_back_to_records(tmp_path: Path) -> None:
    written = write_fit(tmp_path / "records_only.fit", START, with_session=False)
    session = parse_device_file(written.path)
    assert session.start_time == START
    assert session.duration_s == pytest.approx(written.duration_s, abs=1e-6)
    assert session.distance_m == pytest.approx(written.distance_m, abs=0.011)
    # altitude is stored at 0.2 m resolution, the writer already rounded to it
    assert session.elevation_gain_m == pytest.approx(written.elevation_gain_m, abs=1e-6)
    assert session.avg_hr == pytest.approx(written.avg_hr, abs=1e-9)
    assert session.max_hr == pytest.approx(written.max_hr, abs=1e-9)
    assert session.sport == "other"  # no session, lap or sport message says what it was


def test_fit_without_session_takes_sport_from_lap(tmp_path: Path) -> None:
    written = write_fit(tmp_path / "lap_only.fit", START, sport="cycling", with_session=False, with_lap=True)
    session = parse_device_file(written.path)
    assert session.sport == "ride"
    assert session.duration_s == pytest.approx(written.duration_s, abs=1e-6)


def test_fit_prefers_session_totals_over_records(tmp_path: Path) -> None:
    written = write_fit(
        tmp_path / "override.fit",
        START,
        session_overrides={
            "total_distance": 5000.0,
            "total_timer_time": 1000.0,
            "total_ascent": 321,
            "avg_heart_rate": 99,
            "max_heart_rate": 188,
        },
    )
    session = parse_device_file(written.path)
    assert session.distance_m == pytest.approx(5000.0, abs=0.011)
    assert session.duration_s == pytest.approx(1000.0, abs=1e-6)
    assert session.elevation_gain_m == pytest.approx(321.0)
    assert session.avg_hr == pytest.approx(99.0)
    assert session.max_hr == pytest.approx(188.0)
    # The records say otherwise for every one of these, so the totals above came from the session.
    assert written.distance_m != pytest.approx(5000.0, abs=1.0)
    assert written.duration_s != pytest.approx(1000.0, abs=1.0)
    assert written.elevation_gain_m != pytest.approx(321.0, abs=1.0)
    assert written.avg_hr != pytest.approx(99.0, abs=1.0)
    assert written.max_hr != pytest.approx(188.0, abs=1.0)


@pytest.mark.parametrize(
    ("sport", "sub_sport", "expected"),
    [
        ("running", "generic", "run"),
        ("running", "trail", "run"),
        ("cycling", "road", "ride"),
        ("e_biking", "generic", "ride"),
        ("swimming", "lap_swimming", "swim"),
        ("generic", "treadmill", "run"),
        ("fitness_equipment", "indoor_cycling", "ride"),
        ("generic", "generic", "other"),
        ("walking", "generic", "other"),
        ("hiking", "generic", "other"),
    ],
)
def test_fit_sport_mapping(sport: str, sub_sport: str, expected: str, tmp_path: Path) -> None:
    written = write_fit(tmp_path / "s.fit", START, n_points=20, sport=sport, sub_sport=sub_sport)
    assert parse_device_file(written.path).sport == expected


@pytest.mark.parametrize(("sport", "expected"), [("Running", "run"), ("Biking", "ride"), ("Other", "other")])
def test_tcx_sport_attribute(sport: str, expected: str, tmp_path: Path) -> None:
    written = write_tcx(tmp_path / "s.tcx", START, n_points=20, sport=sport)
    assert parse_device_file(written.path).sport == expected


@pytest.mark.parametrize(
    ("sport", "expected"),
    [
        ("running", "run"),
        ("cycling", "ride"),
        ("Ride", "ride"),
        ("swimming", "swim"),
        ("hiking", "other"),
        (None, "other"),
    ],
)
def test_gpx_track_type(sport: str | None, expected: str, tmp_path: Path) -> None:
    written = write_gpx(tmp_path / "s.gpx", START, n_points=20, sport=sport)
    assert parse_device_file(written.path).sport == expected


@pytest.mark.parametrize("n_laps", [1, 3, 7])
def test_tcx_laps_are_summed(n_laps: int, tmp_path: Path) -> None:
    written = write_tcx(tmp_path / "laps.tcx", START, n_laps=n_laps)
    session = parse_device_file(written.path)
    assert session.start_time == START
    assert session.duration_s == pytest.approx(written.duration_s, abs=1e-6)
    assert session.distance_m == pytest.approx(written.distance_m, abs=0.011 * n_laps)


@pytest.mark.parametrize("fmt", ["gpx", "tcx"])
def test_local_time_offsets_are_converted_to_utc(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path, utc_offset_h=2)
    text = written.path.read_text("utf-8")
    assert "+02:00" in text and "Z<" not in text
    session = parse_device_file(written.path)
    assert session.start_time == START
    assert session.start_time.tzinfo == UTC
    assert session.duration_s == pytest.approx(written.duration_s)


def test_device_session_is_frozen(tmp_path: Path) -> None:
    session = parse_device_file(_write("gpx", tmp_path, n_points=10).path)
    assert isinstance(session, DeviceSession)
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.sport = "ride"  # type: ignore[misc]


# --------------------------------------------------------------------------- sha256


@pytest.mark.parametrize("fmt", FORMATS)
def test_sha256_is_of_the_content_not_the_path(fmt: str, tmp_path: Path) -> None:
    first = _write(fmt, tmp_path, name="one")
    second = _write(fmt, tmp_path, name="two")
    # the writers are deterministic: same arguments, same bytes at another path
    assert first.path.read_bytes() == second.path.read_bytes()
    digest = hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert sha256_of(first.path) == digest
    assert parse_device_file(first.path).sha256 == digest
    # bronze.device_files is keyed by this: the same file landed twice is one file
    assert parse_device_file(second.path).sha256 == digest


@pytest.mark.parametrize("fmt", FORMATS)
def test_sha256_changes_with_content(fmt: str, tmp_path: Path) -> None:
    a = _write(fmt, tmp_path, name="a")
    b = WRITERS[fmt](tmp_path / f"b.{fmt}", START + timedelta(seconds=1))
    assert sha256_of(a.path) != sha256_of(b.path)
    assert parse_device_file(a.path).sha256 != parse_device_file(b.path).sha256


def test_sha256_of_large_file_reads_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.fit"
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB, more than one chunk
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("keep_fraction", [0.0005, 0.1, 0.5, 0.95, 0.999])
def test_truncated_file_raises_naming_format(fmt: str, keep_fraction: float, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path)
    truncate(written.path, keep_fraction)
    message = _raises(written.path)
    assert message.startswith(f"{fmt}: ")


@pytest.mark.parametrize("keep_fraction", [0.1, 0.5, 0.999])
def test_truncated_fit_reason(keep_fraction: float, tmp_path: Path) -> None:
    written = write_fit(tmp_path / "t.fit", START)
    truncate(written.path, keep_fraction)
    assert _raises(written.path).startswith("fit: truncated file (CRC/EOF): ")


@pytest.mark.parametrize("fmt", ["tcx", "gpx"])
def test_truncated_xml_reason(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path)
    truncate(written.path, 0.5)
    assert _raises(written.path).startswith(f"{fmt}: malformed or truncated XML: ")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text", [False, True])
def test_garbage_raises_naming_format(fmt: str, text: bool, tmp_path: Path) -> None:
    path = tmp_path / f"junk.{fmt}"
    write_garbage(path, text=text)
    assert _raises(path).startswith(f"{fmt}: ")


def test_garbage_fit_reason(tmp_path: Path) -> None:
    path = tmp_path / "junk.fit"
    write_garbage(path)
    assert _raises(path).startswith("fit: not a FIT file (bad header)")


@pytest.mark.parametrize("at_fraction", [0.3, 0.6, 0.9])
def test_fit_flipped_byte_fails_crc(at_fraction: float, tmp_path: Path) -> None:
    written = write_fit(tmp_path / "f.fit", START)
    flip_byte(written.path, at_fraction)
    assert _raises(written.path).startswith("fit: truncated file (CRC/EOF): FitCRCError")


@pytest.mark.parametrize("fmt", ["tcx", "gpx"])
def test_xml_flipped_byte_raises(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path)
    flip_byte(written.path, 0.5)
    assert _raises(written.path).startswith(f"{fmt}: ")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_empty_file_raises(fmt: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(content)
    assert _raises(path).startswith(f"{fmt}: empty file")


@pytest.mark.parametrize("fmt", FORMATS)
def test_single_point_is_no_timed_points(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path, n_points=1)
    assert _raises(written.path) == f"{fmt}: no timed points (no timestamps or zero duration)"


@pytest.mark.parametrize("fmt", ["tcx", "gpx"])
def test_xml_without_timestamps_is_no_timed_points(fmt: str, tmp_path: Path) -> None:
    written = _write(fmt, tmp_path, n_points=50)
    text = written.path.read_text("utf-8")
    text = re.sub(r"\s*<(time|Time|Id)>[^<]*</(time|Time|Id)>", "", text)
    text = re.sub(r' StartTime="[^"]*"', "", text)
    text = re.sub(r"<TotalTimeSeconds>[^<]*</TotalTimeSeconds>", "<TotalTimeSeconds>0</TotalTimeSeconds>", text)
    written.path.write_text(text, "utf-8")
    assert "no timed points" in _raises(written.path)


def test_gpx_content_named_tcx_is_not_a_tcx_document(tmp_path: Path) -> None:
    written = write_gpx(tmp_path / "a.gpx", START)
    path = written.path.rename(tmp_path / "a.tcx")
    assert _raises(path).startswith("tcx: not a TCX document (root element 'gpx')")


@pytest.mark.parametrize(("source", "target"), [("tcx", "gpx"), ("fit", "gpx"), ("gpx", "fit"), ("fit", "tcx")])
def test_wrong_content_for_extension_names_extension_format(source: str, target: str, tmp_path: Path) -> None:
    written = _write(source, tmp_path)
    path = written.path.rename(tmp_path / f"renamed.{target}")
    assert _raises(path).startswith(f"{target}: ")


def test_fit_course_file_is_not_an_activity(tmp_path: Path) -> None:
    written = write_fit(tmp_path / "course.fit", START, file_type="course")
    assert _raises(written.path).startswith("fit: not an activity file")


def test_tcx_bad_number_raises(tmp_path: Path) -> None:
    written = write_tcx(tmp_path / "n.tcx", START, n_points=20)
    text = written.path.read_text("utf-8").replace("<AltitudeMeters>", "<AltitudeMeters>x", 1)
    written.path.write_text(text, "utf-8")
    assert _raises(written.path).startswith("tcx: bad number in <AltitudeMeters>")


def test_gpx_entity_declarations_rejected(tmp_path: Path) -> None:
    path = tmp_path / "evil.gpx"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa">]>'
        '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">&a;</gpx>',
        "utf-8",
    )
    assert _raises(path).startswith("gpx: entity declarations are not allowed")


def test_missing_file_is_an_os_error_not_a_device_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_device_file(tmp_path / "missing.fit")


# --------------------------------------------------------------------------- sports


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Running", "run"),
        ("run", "run"),
        ("trail_running", "run"),
        ("VirtualRun", "run"),
        ("Biking", "ride"),
        ("cycling", "ride"),
        ("e-biking", "ride"),
        ("VirtualRide", "ride"),
        ("mountain_biking", "ride"),
        ("Swimming", "swim"),
        ("open water swimming", "swim"),
        ("Other", "other"),
        ("walking", "other"),
        ("", "other"),
        (None, "other"),
        (9, "other"),
    ],
)
def test_normalise_sport(raw: object, expected: str) -> None:
    assert normalise_sport(raw) == expected
