"""Read activity files from sports devices (FIT, TCX, GPX) into one summary record.

Pure Python, no Spark: the ingestion jobs call `parse_device_file` once per uploaded
file and turn each `DeviceSession` into a row. Every way a file can be unreadable
(empty, truncated, corrupt, wrong format, no timed points) surfaces as one exception,
`DeviceFileError`, whose message starts with the format and a short cause, e.g.
``"fit: truncated file (CRC/EOF): ..."``, so a job can quarantine the file and
record why. Errors reading the file from disk (`OSError`) are *not* wrapped: they
are about storage, not about the file's content.

Summary fields follow the device's own totals where the format carries them and are
derived from the sampled points otherwise:

========  ===========================================  ==========================
field     FIT                                          TCX / GPX
========  ===========================================  ==========================
duration  session total_timer_time (else elapsed,      TCX: sum of Lap
          else last-first record timestamp)            TotalTimeSeconds; GPX:
                                                       last-first point time
distance  session total_distance (else max record      TCX: sum of Lap
          distance, else path length of positions)     DistanceMeters; GPX: 2-D
                                                       track length (gpxpy)
gain      session total_ascent (else sum of positive   TCX: positive altitude
          altitude deltas of records)                  deltas; GPX: gpxpy uphill
HR        session avg/max_heart_rate (else mean/max    mean/max of trackpoint HR
          of record heart_rate)                        samples
========  ===========================================  ==========================
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from athlete_platform.errors import PlatformError

__all__ = [
    "DeviceFileError",
    "DeviceSession",
    "SUPPORTED_FORMATS",
    "detect_format",
    "normalise_sport",
    "parse_device_bytes",
    "parse_device_file",
    "sha256_of",
]

SUPPORTED_FORMATS: tuple[str, ...] = ("fit", "tcx", "gpx")

_CHUNK = 1 << 20
_EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), for the FIT position fallback


class DeviceFileError(PlatformError):
    """Parser's reason a file can't be read (message names the format and the cause).

    The message has the form ``"<format>: <cause>[: <parser message>]"``, where
    format is ``fit``, ``tcx``, ``gpx`` or ``unknown`` (unsupported extension).
    It derives from `PlatformError` (and so from `Exception`) like every other
    bad-input error of the platform.
    """


@dataclass(frozen=True)
class DeviceSession:
    """One activity as summarised from a device file.

    Attributes:
        sha256: hex SHA-256 of the file's bytes (the file's identity for dedup).
        file_format: ``'fit'``, ``'tcx'`` or ``'gpx'``.
        sport: normalised to ``'run'``, ``'ride'``, ``'swim'`` or ``'other'``.
        start_time: start of the activity, timezone-aware UTC.
        duration_s: duration in seconds (> 0).
        distance_m: distance in metres (>= 0).
        elevation_gain_m: total ascent in metres, None when the file has no altitude.
        avg_hr: mean heart rate in bpm, None when the file has no heart rate.
        max_hr: maximum heart rate in bpm, None when the file has no heart rate.
    """

    sha256: str
    file_format: str
    sport: str
    start_time: datetime
    duration_s: float
    distance_m: float
    elevation_gain_m: float | None
    avg_hr: float | None
    max_hr: float | None


# --------------------------------------------------------------------------- public


def detect_format(path: Path) -> str:
    """Return ``'fit'``, ``'tcx'`` or ``'gpx'`` from the file extension (any case).

    Raises:
        DeviceFileError: the extension is none of those.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in SUPPORTED_FORMATS:
        return suffix
    shown = Path(path).suffix or "(none)"
    raise DeviceFileError(
        f"unknown: unsupported file extension {shown!r} for {Path(path).name!r}; expected one of .fit, .tcx, .gpx"
    )


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_device_file(path: Path) -> DeviceSession:
    """Parse a FIT, TCX or GPX activity file into a `DeviceSession`.

    The file is read once; the digest and the parse use the same bytes.

    Raises:
        DeviceFileError: unsupported extension, empty, truncated or corrupt file,
            not an activity, or no timed points (no timestamps or zero duration).
        OSError: the file cannot be read from disk.
    """
    path = Path(path)
    detect_format(path)  # an unsupported extension is refused before the file is read
    return parse_device_bytes(path.read_bytes(), path.name)


def parse_device_bytes(data: bytes, name: str) -> DeviceSession:
    """Parse the bytes of a device file called `name` (its extension gives the format).

    For callers that read the file themselves (bronze opens landing files without following
    links out of the landing folder). Raises `DeviceFileError` as `parse_device_file` does.
    """
    fmt = detect_format(Path(name))
    if not data.strip():
        raise DeviceFileError(f"{fmt}: empty file ({len(data)} bytes)")
    digest = hashlib.sha256(data).hexdigest()
    parser = {"fit": _parse_fit, "tcx": _parse_tcx, "gpx": _parse_gpx}[fmt]
    try:
        summary = parser(data)
    except DeviceFileError:
        raise
    except Exception as exc:  # any parser failure is a property of the file
        raise DeviceFileError(f"{fmt}: unreadable file: {_describe(exc)}") from exc
    return _finish(digest, fmt, summary)


def normalise_sport(raw: object) -> str:
    """Map a device sport label to ``'run'``, ``'ride'``, ``'swim'`` or ``'other'``.

    Accepts FIT sport/sub-sport names (``running``, ``cycling``, ``e_biking``,
    ``swimming``, ``treadmill``, ``indoor_cycling``, ``lap_swimming`` ...), TCX
    Sport attributes (``Running``, ``Biking``, ``Other``) and GPX track types
    (``running``, ``Run``, ``cycling``, ``Ride``, ``VirtualRide`` ...). Case,
    spaces, dashes and underscores are ignored. Anything else, including None,
    is ``'other'``.
    """
    if raw is None:
        return "other"
    key = "".join(ch for ch in str(raw).lower() if ch.isalnum())
    return _SPORT_ALIASES.get(key, "other")


_RUN_LABELS = "run running trailrun trailrunning treadmillrunning trackrunning virtualrun indoorrunning streetrunning"
_RIDE_LABELS = (
    "ride riding bike biking cycling cycle ebiking ebikeride virtualride indoorcycling roadcycling "
    "mountainbiking mountainbikeride gravelride gravelcycling handcycling velomobile"
)
_SWIM_LABELS = "swim swimming lapswimming openwaterswimming poolswim poolswimming"
_SPORT_ALIASES: dict[str, str] = {
    **dict.fromkeys(_RUN_LABELS.split(), "run"),
    **dict.fromkeys(_RIDE_LABELS.split(), "ride"),
    **dict.fromkeys(_SWIM_LABELS.split(), "swim"),
}


# --------------------------------------------------------------------------- shared


@dataclass
class _Summary:
    """What a parser extracted, before validation into a DeviceSession."""

    sport: str
    start_time: datetime | None
    duration_s: float | None
    distance_m: float | None
    elevation_gain_m: float | None
    avg_hr: float | None
    max_hr: float | None


def _finish(digest: str, fmt: str, s: _Summary) -> DeviceSession:
    if s.start_time is None or s.duration_s is None or not s.duration_s > 0:
        raise DeviceFileError(f"{fmt}: no timed points (no timestamps or zero duration)")
    if not math.isfinite(s.duration_s):
        raise DeviceFileError(f"{fmt}: invalid duration {s.duration_s!r}")
    distance = s.distance_m if s.distance_m is not None else 0.0
    if not math.isfinite(distance) or distance < 0:
        raise DeviceFileError(f"{fmt}: invalid distance {distance!r}")
    return DeviceSession(
        sha256=digest,
        file_format=fmt,
        sport=s.sport,
        start_time=_as_utc(s.start_time),
        duration_s=float(s.duration_s),
        distance_m=float(distance),
        elevation_gain_m=None if s.elevation_gain_m is None else float(s.elevation_gain_m),
        avg_hr=None if s.avg_hr is None else float(s.avg_hr),
        max_hr=None if s.max_hr is None else float(s.max_hr),
    )


def _as_utc(value: datetime) -> datetime:
    """Return value in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _positive_gain(altitudes: Iterable[float]) -> float | None:
    """Sum of positive deltas between consecutive altitudes; None if fewer than one."""
    total = 0.0
    previous: float | None = None
    seen = False
    for alt in altitudes:
        seen = True
        if previous is not None and alt > previous:
            total += alt - previous
        previous = alt
    return total if seen else None


def _hr_stats(samples: Sequence[float]) -> tuple[float | None, float | None]:
    if not samples:
        return None, None
    return sum(samples) / len(samples), float(max(samples))


def _valid_hr(value: Any) -> float | None:
    """A heart rate in bpm, or None for missing/invalid values (0 or out of range)."""
    if value is None:
        return None
    try:
        bpm = float(value)
    except (TypeError, ValueError):
        return None
    return bpm if 0 < bpm < 255 and math.isfinite(bpm) else None


def _combine_sports(sports: Iterable[str]) -> str:
    distinct = set(sports)
    return distinct.pop() if len(distinct) == 1 else "other"


# --------------------------------------------------------------------------- FIT


def _parse_fit(data: bytes) -> _Summary:
    import fitdecode

    sessions: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    file_type: Any = None
    fallback_sport: dict[str, Any] | None = None  # from a sport or lap message
    try:
        with fitdecode.FitReader(
            io.BytesIO(data),
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.RAISE,
        ) as reader:
            for frame in reader:
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                if frame.name == "file_id" and file_type is None:
                    file_type = frame.get_value("type", fallback=None)
                elif frame.name == "session":
                    sessions.append(_fit_values(frame, _FIT_SESSION_FIELDS))
                elif frame.name in ("sport", "lap") and fallback_sport is None:
                    fallback_sport = _fit_values(frame, ("sport", "sub_sport"))
                elif frame.name == "record":
                    records.append(_fit_values(frame, _FIT_RECORD_FIELDS))
    except (fitdecode.FitCRCError, fitdecode.FitEOFError) as exc:
        raise DeviceFileError(f"fit: truncated file (CRC/EOF): {_describe(exc)}") from exc
    except fitdecode.FitHeaderError as exc:
        raise DeviceFileError(f"fit: not a FIT file (bad header): {_describe(exc)}") from exc
    except fitdecode.FitError as exc:
        raise DeviceFileError(f"fit: corrupt data: {_describe(exc)}") from exc

    if file_type is not None and file_type not in ("activity", 4):
        raise DeviceFileError(f"fit: not an activity file (file_id.type={file_type!r})")
    summary = _fit_summary(sessions, records)
    if not sessions and fallback_sport is not None:
        summary.sport = _fit_sport(fallback_sport["sport"], fallback_sport["sub_sport"])
    return summary


_FIT_SESSION_FIELDS = (
    "sport",
    "sub_sport",
    "start_time",
    "timestamp",
    "total_timer_time",
    "total_elapsed_time",
    "total_distance",
    "total_ascent",
    "avg_heart_rate",
    "max_heart_rate",
)
_FIT_RECORD_FIELDS = (
    "timestamp",
    "distance",
    "enhanced_altitude",
    "altitude",
    "heart_rate",
    "position_lat",
    "position_long",
)

# FIT profile `sport` numbers, for files whose enum values the decoder did not name.
_FIT_SPORT_NUMBERS = {1: "running", 2: "cycling", 5: "swimming", 21: "e_biking"}
# Sports that say nothing by themselves; their sub_sport then decides.
_FIT_UNSPECIFIC_SPORTS = {None, "generic", "fitness_equipment", 0, 4}
_FIT_SUB_SPORTS = {
    "treadmill": "run",
    "indoor_running": "run",
    "indoor_cycling": "ride",
    "spin": "ride",
    "lap_swimming": "swim",
    "open_water": "swim",
}


def _fit_values(frame: Any, names: Sequence[str]) -> dict[str, Any]:
    return {name: frame.get_value(name, fallback=None) for name in names}


def _fit_sport(sport: Any, sub_sport: Any) -> str:
    """FIT sport first; a generic/fitness-equipment sport falls back to sub_sport."""
    if sport in _FIT_UNSPECIFIC_SPORTS:
        return _FIT_SUB_SPORTS.get(sub_sport, "other") if isinstance(sub_sport, str) else "other"
    if isinstance(sport, int):
        sport = _FIT_SPORT_NUMBERS.get(sport, sport)
    return normalise_sport(sport)


def _fit_summary(sessions: list[dict[str, Any]], records: list[dict[str, Any]]) -> _Summary:
    timed = [r for r in records if isinstance(r["timestamp"], datetime)]
    record_start = timed[0]["timestamp"] if timed else None
    record_duration = (timed[-1]["timestamp"] - timed[0]["timestamp"]).total_seconds() if timed else None
    altitudes = [
        float(r["enhanced_altitude"] if r["enhanced_altitude"] is not None else r["altitude"])
        for r in records
        if r["enhanced_altitude"] is not None or r["altitude"] is not None
    ]
    record_gain = _positive_gain(altitudes)
    record_hr = [hr for hr in (_valid_hr(r["heart_rate"]) for r in records) if hr is not None]
    record_avg_hr, record_max_hr = _hr_stats(record_hr)
    distances = [float(r["distance"]) for r in records if r["distance"] is not None]
    record_distance = max(distances) if distances else _fit_path_length(records)

    if not sessions:
        return _Summary(
            "other", record_start, record_duration, record_distance, record_gain, record_avg_hr, record_max_hr
        )

    sport = _combine_sports(_fit_sport(s["sport"], s["sub_sport"]) for s in sessions)
    starts = [s["start_time"] for s in sessions if isinstance(s["start_time"], datetime)]
    start = min(starts) if starts else record_start

    durations: list[float] = []
    for s in sessions:
        value = s["total_timer_time"] if s["total_timer_time"] is not None else s["total_elapsed_time"]
        if value is not None:
            durations.append(float(value))
    duration = sum(durations) if len(durations) == len(sessions) else record_duration
    if duration is not None and duration <= 0:
        duration = record_duration

    dists = [s["total_distance"] for s in sessions if s["total_distance"] is not None]
    distance = float(sum(dists)) if len(dists) == len(sessions) else record_distance

    ascents = [s["total_ascent"] for s in sessions if s["total_ascent"] is not None]
    gain = float(sum(ascents)) if len(ascents) == len(sessions) else record_gain

    avg_hrs = [_valid_hr(s["avg_heart_rate"]) for s in sessions]
    if all(hr is not None for hr in avg_hrs):
        weights = [float(s["total_timer_time"] or s["total_elapsed_time"] or 0.0) for s in sessions]
        if sum(weights) > 0:
            avg_hr: float | None = sum(h * w for h, w in zip(avg_hrs, weights, strict=True)) / sum(weights)  # type: ignore[operator]
        else:
            avg_hr = sum(avg_hrs) / len(avg_hrs)  # type: ignore[arg-type]
    else:
        avg_hr = record_avg_hr
    max_hrs = [_valid_hr(s["max_heart_rate"]) for s in sessions]
    max_hr = max(max_hrs) if all(hr is not None for hr in max_hrs) else record_max_hr  # type: ignore[type-var]

    return _Summary(sport, start, duration, distance, gain, avg_hr, max_hr)


def _fit_path_length(records: Sequence[dict[str, Any]]) -> float | None:
    """Great-circle length of record positions (semicircles), None without positions."""
    to_deg = 180.0 / 2**31
    points = [
        (r["position_lat"] * to_deg, r["position_long"] * to_deg)
        for r in records
        if isinstance(r["position_lat"], int) and isinstance(r["position_long"], int)
    ]
    if len(points) < 2:
        return None
    return sum(_haversine_m(a, b) for a, b in zip(points, points[1:], strict=False))


def _haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# --------------------------------------------------------------------------- TCX


def _parse_tcx(data: bytes) -> _Summary:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise DeviceFileError(f"tcx: malformed or truncated XML: {_describe(exc)}") from exc
    if root is None or _local(root) != "TrainingCenterDatabase":
        name = _local(root) if root is not None else None
        raise DeviceFileError(f"tcx: not a TCX document (root element {name!r})")

    activities = [el for el in root.iter() if _local(el) == "Activity"]
    if not activities:
        raise DeviceFileError("tcx: no Activity element")

    sports: list[str] = []
    starts: list[datetime] = []
    lap_time = 0.0
    lap_dist = 0.0
    laps_with_dist = 0
    n_laps = 0
    lap_avg_hr: list[tuple[float, float]] = []
    lap_max_hr: list[float] = []
    times: list[datetime] = []
    last_distance: float | None = None
    altitudes: list[float] = []
    hr_samples: list[float] = []

    for activity in activities:
        sports.append(normalise_sport(activity.get("Sport")))
        for lap in _children(activity, "Lap"):
            n_laps += 1
            start = lap.get("StartTime")
            if start:
                starts.append(_parse_iso("tcx", start))
            seconds = _float_child("tcx", lap, "TotalTimeSeconds")
            if seconds is not None:
                lap_time += seconds
            meters = _float_child("tcx", lap, "DistanceMeters")
            if meters is not None:
                lap_dist += meters
                laps_with_dist += 1
            avg = _valid_hr(_float_path("tcx", lap, ("AverageHeartRateBpm", "Value")))
            if avg is not None:
                lap_avg_hr.append((avg, seconds or 0.0))
            mx = _valid_hr(_float_path("tcx", lap, ("MaximumHeartRateBpm", "Value")))
            if mx is not None:
                lap_max_hr.append(mx)
            for point in (el for el in lap.iter() if _local(el) == "Trackpoint"):
                when = _text_child(point, "Time")
                if when:
                    times.append(_parse_iso("tcx", when))
                dist = _float_child("tcx", point, "DistanceMeters")
                if dist is not None:
                    last_distance = dist if last_distance is None else max(last_distance, dist)
                alt = _float_child("tcx", point, "AltitudeMeters")
                if alt is not None:
                    altitudes.append(alt)
                hr = _valid_hr(_float_path("tcx", point, ("HeartRateBpm", "Value")))
                if hr is not None:
                    hr_samples.append(hr)

    if not starts and times:
        starts.append(min(times))
    start_time = min(starts) if starts else None
    duration: float | None = lap_time if lap_time > 0 else None
    if duration is None and len(times) >= 2:
        duration = (max(times) - min(times)).total_seconds()
    distance = lap_dist if n_laps and laps_with_dist == n_laps else last_distance

    avg_hr, max_hr = _hr_stats(hr_samples)
    if avg_hr is None and lap_avg_hr:
        total_w = sum(w for _, w in lap_avg_hr)
        avg_hr = (
            sum(h * w for h, w in lap_avg_hr) / total_w
            if total_w > 0
            else sum(h for h, _ in lap_avg_hr) / len(lap_avg_hr)
        )
    if max_hr is None and lap_max_hr:
        max_hr = max(lap_max_hr)

    return _Summary(
        sport=_combine_sports(sports),
        start_time=start_time,
        duration_s=duration,
        distance_m=distance,
        elevation_gain_m=_positive_gain(altitudes),
        avg_hr=avg_hr,
        max_hr=max_hr,
    )


def _local(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):  # comments / processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(element: Any, name: str) -> Iterator[Any]:
    return (child for child in element if _local(child) == name)


def _text_child(element: Any, name: str) -> str | None:
    for child in _children(element, name):
        return (child.text or "").strip() or None
    return None


def _float_child(fmt: str, element: Any, name: str) -> float | None:
    text = _text_child(element, name)
    return None if text is None else _to_float(fmt, name, text)


def _float_path(fmt: str, element: Any, names: Sequence[str]) -> float | None:
    node = element
    for name in names:
        node = next(_children(node, name), None)
        if node is None:
            return None
    text = (node.text or "").strip()
    return _to_float(fmt, names[-1], text) if text else None


def _to_float(fmt: str, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise DeviceFileError(f"{fmt}: bad number in <{name}>: {text[:40]!r}") from exc
    if not math.isfinite(value):
        raise DeviceFileError(f"{fmt}: bad number in <{name}>: {text[:40]!r}")
    return value


def _parse_iso(fmt: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise DeviceFileError(f"{fmt}: bad timestamp {text[:40]!r}") from exc
    return _as_utc(value)


# --------------------------------------------------------------------------- GPX


def _parse_gpx(data: bytes) -> _Summary:
    import gpxpy
    import gpxpy.gpx

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeviceFileError(f"gpx: not UTF-8 text: {_describe(exc)}") from exc
    if "<!ENTITY" in text:
        raise DeviceFileError("gpx: entity declarations are not allowed in device files")
    try:
        gpx = gpxpy.parse(text)
    except gpxpy.gpx.GPXXMLSyntaxException as exc:
        raise DeviceFileError(f"gpx: malformed or truncated XML: {_describe(exc)}") from exc
    except gpxpy.gpx.GPXException as exc:
        raise DeviceFileError(f"gpx: invalid GPX data: {_describe(exc)}") from exc

    points = [p for track in gpx.tracks for seg in track.segments for p in seg.points]
    if not points:
        raise DeviceFileError("gpx: no timed points (no track points)")

    types = [normalise_sport(t.type) for t in gpx.tracks if t.type]
    sport = _combine_sports(types) if types else "other"

    bounds = gpx.get_time_bounds()
    start, end = bounds.start_time, bounds.end_time
    duration = (end - start).total_seconds() if start is not None and end is not None else None

    gain: float | None = None
    if gpx.has_elevations():
        gain = float(gpx.get_uphill_downhill().uphill)

    hr_samples = [hr for hr in (_gpx_hr(p) for p in points) if hr is not None]
    avg_hr, max_hr = _hr_stats(hr_samples)

    return _Summary(
        sport=sport,
        start_time=start,
        duration_s=duration,
        distance_m=float(gpx.length_2d() or 0.0),
        elevation_gain_m=gain,
        avg_hr=avg_hr,
        max_hr=max_hr,
    )


def _gpx_hr(point: Any) -> float | None:
    """Heart rate from a Garmin TrackPointExtension (v1 or v2) ``hr`` child, if any."""
    for extension in point.extensions or ():
        for element in extension.iter():
            tag = element.tag if isinstance(element.tag, str) else ""
            if tag.rsplit("}", 1)[-1].lower() == "hr" and element.text:
                try:
                    return _valid_hr(float(element.text.strip()))
                except ValueError:
                    return None
    return None
