"""Write small, realistic, deterministic FIT / TCX / GPX activity files for tests.

Every writer lays the same synthetic track (see `synthetic_track`): one point every
`step_s` seconds along a gently curving path, with a rolling elevation profile and a
heart rate that rises then oscillates. The writers return a `WrittenActivity` with
the totals a correct reader should find, computed here from the values exactly as
written (rounded to what each format stores), so tests compare the parser against
what is in the file rather than against the generator's floats.

GPX and TCX are written by hand with `xml.etree.ElementTree` (independent of the
readers under test, gpxpy and lxml). FIT is written with the `fit-tool` package
(imported only by `write_fit`).
"""

from __future__ import annotations

import math
import random
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "TrackPoint",
    "WrittenActivity",
    "synthetic_track",
    "write_gpx",
    "write_tcx",
    "write_fit",
    "truncate",
    "write_garbage",
    "flip_byte",
]

EARTH_RADIUS_M = 6_371_008.8
ORIGIN = (47.3769, 8.5417)  # lat, lon in degrees
SPEED_M_S = {"run": 3.2, "ride": 8.0, "swim": 1.1, "other": 1.5}
ALTITUDE_STEP_M = 0.2  # FIT altitude resolution (scale 5); every writer uses it

GPX_NS = "http://www.topografix.com/GPX/1/1"
GPXTPX_NS = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
TCX_NS = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"


@dataclass(frozen=True)
class TrackPoint:
    """One sample as written: time (UTC), position (deg), altitude (m), HR, distance."""

    time: datetime
    lat: float
    lon: float
    altitude_m: float
    heart_rate: int | None
    distance_m: float


@dataclass(frozen=True)
class WrittenActivity:
    """What a writer put in the file: the values a correct parser must recover."""

    path: Path
    start: datetime
    duration_s: float
    distance_m: float
    elevation_gain_m: float
    avg_hr: float | None
    max_hr: float | None
    n_points: int
    points: tuple[TrackPoint, ...]


# --------------------------------------------------------------------------- track


def _kind(sport: str | None) -> str:
    s = (sport or "").lower()
    if s in ("running", "run", "treadmill"):
        return "run"
    if s in ("cycling", "biking", "ride", "indoor_cycling"):
        return "ride"
    if s in ("swimming", "swim", "lap_swimming"):
        return "swim"
    return "other"


def _destination(lat: float, lon: float, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    """Point reached from (lat, lon) after dist_m along bearing on a sphere."""
    phi1, lam1, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = dist_m / EARTH_RADIUS_M
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), math.degrees(lam2)


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, l1, p2, l2 = map(math.radians, (lat1, lon1, lat2, lon2))
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def synthetic_track(
    start: datetime, n_points: int = 300, step_s: int = 2, with_hr: bool = True, sport: str = "running"
) -> list[TrackPoint]:
    """Deterministic track: curving path, rolling hills (+/-15 m, slow climb), HR 120-150.

    Positions are rounded to 1e-7 deg (what GPX/TCX carry) and the cumulative distance
    is the great-circle length between the rounded positions, rounded to 1 cm (FIT
    distance resolution); altitudes are rounded to 0.2 m (FIT altitude resolution).
    """
    if n_points < 1:
        raise ValueError("n_points must be >= 1")
    if int(step_s) != step_s or step_s <= 0:
        raise ValueError("step_s must be a positive whole number of seconds (FIT resolution)")
    start = _utc_whole_seconds(start)
    base_speed = SPEED_M_S[_kind(sport)]
    lat, lon = ORIGIN
    distance = 0.0
    points: list[TrackPoint] = []
    for i in range(n_points):
        if i > 0:
            speed = base_speed * (1.0 + 0.1 * math.sin(i / 7.0))
            bearing = 60.0 + 90.0 * math.sin(2 * math.pi * i / max(n_points, 2))
            new_lat, new_lon = _destination(lat, lon, bearing, speed * step_s)
            new_lat, new_lon = round(new_lat, 7), round(new_lon, 7)
            distance += _haversine_m(lat, lon, new_lat, new_lon)
            lat, lon = new_lat, new_lon
        raw_alt = 420.0 + 15.0 * math.sin(2 * math.pi * i / 80.0) + 0.02 * i
        altitude = round(round(raw_alt / ALTITUDE_STEP_M) * ALTITUDE_STEP_M, 1)
        hr = None
        if with_hr:
            hr = int(round(120 + 25 * (1 - math.exp(-i / 60.0)) + 6 * math.sin(2 * math.pi * i / 45.0)))
        points.append(
            TrackPoint(
                time=start + timedelta(seconds=i * int(step_s)),
                lat=round(lat, 7) if i == 0 else lat,
                lon=round(lon, 7) if i == 0 else lon,
                altitude_m=altitude,
                heart_rate=hr,
                distance_m=round(distance, 2),
            )
        )
    return points


def _expected(path: Path, points: Sequence[TrackPoint]) -> WrittenActivity:
    gain = 0.0
    for a, b in zip(points, points[1:], strict=False):
        if b.altitude_m > a.altitude_m:
            gain += b.altitude_m - a.altitude_m
    hrs = [p.heart_rate for p in points if p.heart_rate is not None]
    return WrittenActivity(
        path=path,
        start=points[0].time,
        duration_s=(points[-1].time - points[0].time).total_seconds(),
        distance_m=points[-1].distance_m,
        elevation_gain_m=gain,
        avg_hr=(sum(hrs) / len(hrs)) if hrs else None,
        max_hr=float(max(hrs)) if hrs else None,
        n_points=len(points),
        points=tuple(points),
    )


def _utc_whole_seconds(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return value.astimezone(UTC).replace(microsecond=0)


def _iso(value: datetime, utc_offset_h: int = 0) -> str:
    if utc_offset_h == 0:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = value.astimezone(timezone(timedelta(hours=utc_offset_h)))
    return local.isoformat(timespec="seconds")


def _write_xml(path: Path, root: ET.Element) -> None:
    ET.indent(root, space="  ")
    data = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    Path(path).write_bytes(data)


# --------------------------------------------------------------------------- GPX


def write_gpx(
    path: Path,
    start: datetime,
    n_points: int = 300,
    step_s: int = 2,
    with_hr: bool = True,
    sport: str | None = "running",
    utc_offset_h: int = 0,
) -> WrittenActivity:
    """Write a GPX 1.1 track; HR goes in Garmin TrackPointExtension v1 ``hr``.

    sport is written as the track ``<type>`` (omitted when None). Times carry 'Z'
    unless utc_offset_h is given, then local times with that offset.
    """
    path = Path(path)
    points = synthetic_track(start, n_points, step_s, with_hr, sport or "other")
    ET.register_namespace("", GPX_NS)
    ET.register_namespace("gpxtpx", GPXTPX_NS)
    g = lambda tag: f"{{{GPX_NS}}}{tag}"  # noqa: E731
    root = ET.Element(g("gpx"), {"version": "1.1", "creator": "athlete-platform tests"})
    meta = ET.SubElement(root, g("metadata"))
    ET.SubElement(meta, g("time")).text = _iso(points[0].time, utc_offset_h)
    trk = ET.SubElement(root, g("trk"))
    ET.SubElement(trk, g("name")).text = "Synthetic activity"
    if sport:
        ET.SubElement(trk, g("type")).text = sport
    seg = ET.SubElement(trk, g("trkseg"))
    for p in points:
        pt = ET.SubElement(seg, g("trkpt"), {"lat": f"{p.lat:.7f}", "lon": f"{p.lon:.7f}"})
        ET.SubElement(pt, g("ele")).text = f"{p.altitude_m:.1f}"
        ET.SubElement(pt, g("time")).text = _iso(p.time, utc_offset_h)
        if p.heart_rate is not None:
            ext = ET.SubElement(pt, g("extensions"))
            tpx = ET.SubElement(ext, f"{{{GPXTPX_NS}}}TrackPointExtension")
            ET.SubElement(tpx, f"{{{GPXTPX_NS}}}hr").text = str(p.heart_rate)
    _write_xml(path, root)
    return _expected(path, points)


# --------------------------------------------------------------------------- TCX


def write_tcx(
    path: Path,
    start: datetime,
    n_points: int = 300,
    step_s: int = 2,
    with_hr: bool = True,
    sport: str = "Running",
    n_laps: int = 2,
    utc_offset_h: int = 0,
) -> WrittenActivity:
    """Write a TCX v2 activity split into n_laps laps of consecutive points.

    sport is the Activity ``Sport`` attribute (Running | Biking | Other). Each lap's
    TotalTimeSeconds / DistanceMeters run from its first point to the next lap's
    first point (the last lap to the last point), so laps add up to the whole.
    """
    path = Path(path)
    points = synthetic_track(start, n_points, step_s, with_hr, sport)
    ET.register_namespace("", TCX_NS)
    t = lambda tag: f"{{{TCX_NS}}}{tag}"  # noqa: E731
    root = ET.Element(t("TrainingCenterDatabase"))
    activity = ET.SubElement(ET.SubElement(root, t("Activities")), t("Activity"), {"Sport": sport})
    ET.SubElement(activity, t("Id")).text = _iso(points[0].time, utc_offset_h)
    n_laps = max(1, min(n_laps, len(points)))
    bounds = [round(k * len(points) / n_laps) for k in range(n_laps + 1)]
    for k in range(n_laps):
        chunk = points[bounds[k] : bounds[k + 1]]
        end = points[bounds[k + 1]] if k + 1 < n_laps else chunk[-1]
        lap = ET.SubElement(activity, t("Lap"), {"StartTime": _iso(chunk[0].time, utc_offset_h)})
        ET.SubElement(lap, t("TotalTimeSeconds")).text = f"{(end.time - chunk[0].time).total_seconds():.1f}"
        ET.SubElement(lap, t("DistanceMeters")).text = f"{end.distance_m - chunk[0].distance_m:.2f}"
        ET.SubElement(lap, t("Calories")).text = "0"
        hrs = [p.heart_rate for p in chunk if p.heart_rate is not None]
        if hrs:
            avg = ET.SubElement(lap, t("AverageHeartRateBpm"))
            ET.SubElement(avg, t("Value")).text = str(round(sum(hrs) / len(hrs)))
            mx = ET.SubElement(lap, t("MaximumHeartRateBpm"))
            ET.SubElement(mx, t("Value")).text = str(max(hrs))
        ET.SubElement(lap, t("Intensity")).text = "Active"
        ET.SubElement(lap, t("TriggerMethod")).text = "Manual"
        track = ET.SubElement(lap, t("Track"))
        for p in chunk:
            tp = ET.SubElement(track, t("Trackpoint"))
            ET.SubElement(tp, t("Time")).text = _iso(p.time, utc_offset_h)
            pos = ET.SubElement(tp, t("Position"))
            ET.SubElement(pos, t("LatitudeDegrees")).text = f"{p.lat:.7f}"
            ET.SubElement(pos, t("LongitudeDegrees")).text = f"{p.lon:.7f}"
            ET.SubElement(tp, t("AltitudeMeters")).text = f"{p.altitude_m:.1f}"
            ET.SubElement(tp, t("DistanceMeters")).text = f"{p.distance_m:.2f}"
            if p.heart_rate is not None:
                hr = ET.SubElement(tp, t("HeartRateBpm"))
                ET.SubElement(hr, t("Value")).text = str(p.heart_rate)
    _write_xml(path, root)
    return _expected(path, points)


# --------------------------------------------------------------------------- FIT


def write_fit(
    path: Path,
    start: datetime,
    n_points: int = 300,
    step_s: int = 2,
    with_hr: bool = True,
    sport: str = "running",
    sub_sport: str = "generic",
    with_session: bool = True,
    with_lap: bool | None = None,
    session_overrides: Mapping[str, Any] | None = None,
    file_type: str = "activity",
) -> WrittenActivity:
    """Write a FIT activity: file_id, timer start, records, timer stop, lap, session, activity.

    sport / sub_sport are FIT profile names (``running``, ``cycling``, ``swimming``,
    ``generic``; ``treadmill``, ``indoor_cycling`` ...). The lap and session carry
    the true totals (total_ascent rounded to whole metres, avg HR to whole bpm, as
    FIT stores them) unless with_session is False (then neither is written, nor
    the activity message; with_lap=True still writes the lap) or
    session_overrides sets session fields by their fit-tool attribute name
    (e.g. ``{"total_distance": 1234.5}``; times in seconds, distances in metres).
    file_type is the FIT ``file_id.type`` name (``activity``, ``course`` ...).
    """
    try:
        from fit_tool.fit_file_builder import FitFileBuilder
        from fit_tool.profile.messages.activity_message import ActivityMessage
        from fit_tool.profile.messages.event_message import EventMessage
        from fit_tool.profile.messages.file_id_message import FileIdMessage
        from fit_tool.profile.messages.lap_message import LapMessage
        from fit_tool.profile.messages.record_message import RecordMessage
        from fit_tool.profile.messages.session_message import SessionMessage
        from fit_tool.profile.profile_type import (
            Event,
            EventType,
            FileType,
            Manufacturer,
            Sport,
            SubSport,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("write_fit needs the FIT writer package 'fit-tool' (pip install fit-tool==0.9.16)") from exc

    path = Path(path)
    points = synthetic_track(start, n_points, step_s, with_hr, sport)
    expected = _expected(path, points)
    ms = lambda dt: int(round(dt.timestamp())) * 1000  # noqa: E731  fit-tool wants unix ms

    builder = FitFileBuilder(auto_define=True, min_string_size=50)
    file_id = FileIdMessage()
    file_id.type = FileType[file_type.upper()]
    file_id.manufacturer = Manufacturer.DEVELOPMENT.value
    file_id.product = 1
    file_id.serial_number = 0x1234ABCD
    file_id.time_created = ms(points[0].time)
    builder.add(file_id)

    event = EventMessage()
    event.event = Event.TIMER
    event.event_type = EventType.START
    event.timestamp = ms(points[0].time)
    builder.add(event)

    for p in points:
        record = RecordMessage()
        record.timestamp = ms(p.time)
        record.position_lat = p.lat
        record.position_long = p.lon
        record.altitude = p.altitude_m
        record.distance = p.distance_m
        if p.heart_rate is not None:
            record.heart_rate = p.heart_rate
        builder.add(record)

    event = EventMessage()
    event.event = Event.TIMER
    event.event_type = EventType.STOP_ALL
    event.timestamp = ms(points[-1].time)
    builder.add(event)

    if with_lap is None:
        with_lap = with_session
    if with_session or with_lap:
        totals: dict[str, Any] = {
            "start_time": ms(points[0].time),
            "timestamp": ms(points[-1].time),
            "total_elapsed_time": expected.duration_s,
            "total_timer_time": expected.duration_s,
            "total_distance": expected.distance_m,
            "total_ascent": int(round(expected.elevation_gain_m)),
        }
        if expected.avg_hr is not None:
            totals["avg_heart_rate"] = int(round(expected.avg_hr))
            totals["max_heart_rate"] = int(expected.max_hr or 0)
        sport_enum, sub_enum = Sport[sport.upper()], SubSport[sub_sport.upper()]

    if with_lap:
        lap = LapMessage()
        for name, value in totals.items():
            setattr(lap, name, value)
        lap.sport = sport_enum
        lap.sub_sport = sub_enum
        builder.add(lap)

    if with_session:
        session = SessionMessage()
        for name, value in {**totals, **dict(session_overrides or {})}.items():
            setattr(session, name, value)
        session.sport = sport_enum
        session.sub_sport = sub_enum
        session.first_lap_index = 0
        session.num_laps = 1
        builder.add(session)

        activity = ActivityMessage()
        activity.timestamp = ms(points[-1].time)
        activity.total_timer_time = expected.duration_s
        activity.num_sessions = 1
        builder.add(activity)

    path.write_bytes(builder.build().to_bytes())
    return expected


# --------------------------------------------------------------------------- damage


def truncate(path: Path, keep_fraction: float) -> int:
    """Cut the file to the first int(size * keep_fraction) bytes (at least one removed).

    Returns the new size.
    """
    if not 0.0 <= keep_fraction < 1.0:
        raise ValueError("keep_fraction must be in [0, 1)")
    data = Path(path).read_bytes()
    keep = min(int(len(data) * keep_fraction), max(len(data) - 1, 0))
    Path(path).write_bytes(data[:keep])
    return keep


def write_garbage(path: Path, size: int = 2048, seed: int = 0, text: bool = False) -> None:
    """Write deterministic junk: random bytes, or (text=True) printable non-XML lines."""
    rng = random.Random(seed)
    if text:
        words = ["lorem", "ipsum", "tempo", "split", "cadence", "watts", "<<", ">>", "&&"]
        out = " ".join(rng.choice(words) for _ in range(size // 4))
        Path(path).write_bytes(out[:size].encode("ascii"))
    else:
        Path(path).write_bytes(bytes(rng.getrandbits(8) for _ in range(size)))


def flip_byte(path: Path, at_fraction: float) -> int:
    """Invert every bit of the byte at int(size * at_fraction); returns its offset."""
    data = bytearray(Path(path).read_bytes())
    offset = min(int(len(data) * at_fraction), len(data) - 1)
    data[offset] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    return offset
