"""On-demand transformations (ODTs): features computed at request time, one definition for all.

An ODT is a plain function whose parameters are its inputs, registered with the *kind* of each
input and the name of its output:

- **request parameters**: what the caller asks about (`race_distance_m`, `race_date`, `ts`);
- **passed features**: values the caller measured or computed itself (`distance_done_m`,
  `elapsed_s`, `current_hr`, `current_pace_s_per_km`);
- **stored features**: columns of the athlete's feature-store row (offline: the Delta row of the
  as-of day; online: the online-store row), profile and last race included;
- **on-demand inputs**: outputs of other ODTs (evaluated first).

Every function works on one request (Python scalars -> a float) AND on whole columns (numpy
arrays / pandas Series -> a float64 array), so training rows, batch scoring rows and serving
vectors all go through the same code: `model_inputs` calls `compute` on a frame's columns,
`OnlineFeatureView.get_feature_vector` on one request's values. Missing values are NaN (the
model's missing marker); dates may be dates, datetimes or ISO strings (a time counts as its
UTC calendar day). Domain formulas (Riegel, Daniels, heart-rate reserve) live in
`domain.physiology`; ODTs only pick and combine their inputs.

One row fast (`compute_one`): on a single request numpy's per-call overhead on 0-d arrays is
most of the cost (~80 us for the time estimator's inputs, against ~10 us for the compiled
trees), so an ODT may register a *one-row twin* (`OnDemand.one`): the same formula on Python
floats, giving the array function's result bit for bit. It uses the same IEEE arithmetic
(+ - * / round the same in Python), numpy's own `log` / `exp` / `power` ufuncs on one float
(libm's `math` versions differ in the last bit on some inputs), integer day counts for dates,
and hands any unusual input (a type it does not know, a value near overflow) to the array
function itself. `tests/unit/test_on_demand_one.py` holds every twin to its array function bit
for bit on thousands of rows with missing, zero, negative, infinite and edge-date values.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from athlete_platform.domain import physiology
from athlete_platform.domain.arrays import as_numbers, calendar_days, maybe_scalar, one_day_count, one_number
from athlete_platform.errors import PlatformError

REQUEST, PASSED, STORED, ON_DEMAND = "request parameter", "passed feature", "stored feature", "on-demand feature"

#: A last-resort base pace (5:00 min/km) when an athlete has no race and no recent run.
FALLBACK_PACE_S_PER_M = 0.3
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class OnDemand:
    """One on-demand transformation: `fn(**inputs) -> name`, with each input's kind declared.

    The declared inputs must be exactly `fn`'s parameters (checked here), so the declaration
    cannot drift from the code.
    """

    name: str  # the output's name (a model input or a feature of a response)
    fn: Callable[..., Any]
    request: tuple[str, ...] = ()
    passed: tuple[str, ...] = ()
    stored: tuple[str, ...] = ()
    on_demand: tuple[str, ...] = ()
    unit: str = ""
    description: str = ""
    #: The same transformation on one row of plain values, bit for bit `fn`'s result, faster;
    #: its parameters are `fn`'s, in the same order. None: `compute_one` calls `fn` itself.
    one: Callable[..., float] | None = None

    def __post_init__(self) -> None:
        params = tuple(inspect.signature(self.fn).parameters)
        if sorted(params) != sorted(self.inputs) or len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"ODT {self.name}: declared inputs {self.inputs} are not {self.fn.__name__}{params}")
        if self.one is not None and tuple(inspect.signature(self.one).parameters) != params:
            raise ValueError(f"ODT {self.name}: its one-row twin {self.one.__name__} must take {params}, in that order")

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.request, *self.passed, *self.stored, *self.on_demand)

    def kind(self, input_name: str) -> str:
        for kind, names in ((REQUEST, self.request), (PASSED, self.passed), (STORED, self.stored)):
            if input_name in names:
                return kind
        return ON_DEMAND

    def __call__(self, **values: Any) -> Any:
        return self.fn(**{name: values[name] for name in self.inputs})

    def metadata(self) -> dict[str, Any]:
        """JSON-able description (for exported models and docs)."""
        return {
            "name": self.name,
            "unit": self.unit,
            "description": self.description,
            "request_parameters": list(self.request),
            "passed_features": list(self.passed),
            "stored_features": list(self.stored),
            "on_demand_features": list(self.on_demand),
        }


class MissingInput(PlatformError):
    """An input an ODT needs is not among the values given (`name`, its `kind`, `needed_by`)."""

    def __init__(self, name: str, kind: str, needed_by: str) -> None:
        super().__init__(f"{kind} {name!r} is needed by the on-demand feature {needed_by!r} but was not given")
        self.name, self.kind, self.needed_by = name, kind, needed_by


# --- the transformations (scalars or arrays in, a float or a float64 array out) ------------


def _out(values: Any) -> np.ndarray | float:
    return maybe_scalar(np.asarray(values, dtype=np.float64))


def _arr(values: Any) -> np.ndarray:
    """Numbers as a float64 array (0-d for a scalar, so arithmetic follows numpy's rules: x/0 is inf/NaN)."""
    return np.asarray(as_numbers(values), dtype=np.float64)


def _days_between(later: Any, earlier: Any) -> np.ndarray | float:
    """Whole calendar days from `earlier` to `later` (NaN where either is missing)."""
    return _out((calendar_days(later) - calendar_days(earlier)) / np.timedelta64(1, "D"))


def distance_m(race_distance_m: Any) -> np.ndarray | float:
    return _out(_arr(race_distance_m))


def log_distance_m(race_distance_m: Any) -> np.ndarray | float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.log(_arr(race_distance_m)))


def sex_male(sex: Any) -> np.ndarray | float:
    return _out(np.asarray(sex, dtype=object) == "M")


def age_years(race_date: Any, birth_date: Any) -> np.ndarray | float:
    return _out(_days_between(race_date, birth_date) / DAYS_PER_YEAR)


def days_since_prev_race(race_date: Any, prev_race_date: Any) -> np.ndarray | float:
    return _days_between(race_date, prev_race_date)


def days_to_race(race_date: Any, ts: Any) -> np.ndarray | float:
    return _days_between(race_date, ts)


def _daniels_projection_s(vdot: Any, race_distance_m: Any) -> np.ndarray | float:
    """Daniels' finish time at a VDOT (the races' or the training runs') for the distance."""
    return _out(physiology.daniels_time_s(_arr(vdot), _arr(race_distance_m)))


def _log_pace(projection_s: Any, race_distance_m: Any) -> np.ndarray | float:
    """ln(projected finish time / distance): a baseline's log pace in s/m."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.log(np.asarray(projection_s, float) / _arr(race_distance_m)))


def vdot_projection_s(race_distance_m: Any, vdot_best_90d: Any) -> np.ndarray | float:
    return _daniels_projection_s(vdot_best_90d, race_distance_m)


def riegel_projection_s(race_distance_m: Any, prev_finish_time_s: Any, prev_distance_m: Any) -> np.ndarray | float:
    return _out(physiology.riegel_time_s(_arr(prev_finish_time_s), _arr(prev_distance_m), _arr(race_distance_m)))


def vdot_log_pace(race_distance_m: Any, vdot_projection_s: Any) -> np.ndarray | float:
    return _log_pace(vdot_projection_s, race_distance_m)


def riegel_log_pace(race_distance_m: Any, riegel_projection_s: Any) -> np.ndarray | float:
    return _log_pace(riegel_projection_s, race_distance_m)


def aerobic_vdot(
    run_hr_mean_42d: Any,
    run_log_speed_mean_42d: Any,
    run_log_speed_per_bpm_42d: Any,
    hr_rest: Any,
    hr_max: Any,
) -> np.ndarray | float:
    return _out(
        physiology.aerobic_vdot(
            _arr(run_hr_mean_42d),
            _arr(run_log_speed_mean_42d),
            _arr(run_log_speed_per_bpm_42d),
            _arr(hr_rest),
            _arr(hr_max),
        )
    )


def aerobic_projection_s(race_distance_m: Any, aerobic_vdot: Any) -> np.ndarray | float:
    return _daniels_projection_s(aerobic_vdot, race_distance_m)


def aerobic_log_pace(race_distance_m: Any, aerobic_projection_s: Any) -> np.ndarray | float:
    return _log_pace(aerobic_projection_s, race_distance_m)


#: Weight of the training runs' estimate (`aerobic_log_pace`) in `base_log_pace` when race
#: baselines exist too: the two kinds of evidence count equally.
AEROBIC_WEIGHT = 0.5


def base_log_pace(
    avg_pace_28d_s_per_km: Any, vdot_log_pace: Any, riegel_log_pace: Any, aerobic_log_pace: Any
) -> np.ndarray | float:
    """The races' estimate (mean of the VDOT and Riegel log paces that exist) and the training
    runs' (`aerobic_log_pace`), weighted AEROBIC_WEIGHT when both exist, else the one that
    exists; else log of the 28-day training pace; else a fallback."""
    vdot, riegel = np.asarray(vdot_log_pace, float), np.asarray(riegel_log_pace, float)
    aerobic = np.asarray(aerobic_log_pace, float)
    has_vdot, has_riegel = np.isfinite(vdot), np.isfinite(riegel)
    counts = has_vdot.astype(int) + has_riegel.astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(has_vdot, vdot, 0.0) + np.where(has_riegel, riegel, 0.0)
        races = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
        blended = AEROBIC_WEIGHT * aerobic + (1.0 - AEROBIC_WEIGHT) * races
        training_pace = np.log(_arr(avg_pace_28d_s_per_km) / 1000.0)
    has_races, has_aerobic = np.isfinite(races), np.isfinite(aerobic)
    estimate = np.where(has_races & has_aerobic, blended, np.where(has_races, races, aerobic))
    base = np.where(np.isfinite(estimate), estimate, training_pace)
    return _out(np.where(np.isfinite(base), base, np.log(FALLBACK_PACE_S_PER_M)))


def fraction_done(race_distance_m: Any, distance_done_m: Any) -> np.ndarray | float:
    """Share of the race covered, in [0, 1]; a watch that measures long (GPS) counts as done."""
    race, done = _arr(race_distance_m), _arr(distance_done_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.minimum(done / race, 1.0)
    return _out(np.where((race > 0) & (done >= 0), fraction, np.nan))


def pace_ratio_28d(current_pace_s_per_km: Any, avg_pace_28d_s_per_km: Any) -> np.ndarray | float:
    """Current pace over the athlete's 28-day average pace (above 1: slower than usual)."""
    current, usual = _arr(current_pace_s_per_km), _arr(avg_pace_28d_s_per_km)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where((current > 0) & (usual > 0), current / usual, np.nan))


def hr_reserve_fraction(current_hr: Any, hr_rest: Any, hr_max: Any) -> np.ndarray | float:
    return _out(physiology.hr_reserve_fraction(_arr(current_hr), _arr(hr_rest), _arr(hr_max)))


def even_pace_finish_s(elapsed_s: Any, fraction_done: Any) -> np.ndarray | float:
    """Finish time if the rest of the race goes at the pace so far (the live model's baseline)."""
    elapsed, fraction = _arr(elapsed_s), np.asarray(fraction_done, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where((fraction > 0) & (elapsed >= 0), elapsed / fraction, np.nan))


def remaining_distance_m(race_distance_m: Any, distance_done_m: Any) -> np.ndarray | float:
    """Distance still to run, m (0 once the watch shows the race distance or more)."""
    race, done = _arr(race_distance_m), _arr(distance_done_m)
    return _out(np.where((race > 0) & (done >= 0), np.maximum(race - done, 0.0), np.nan))


def prerace_projection_s(race_distance_m: Any, base_log_pace: Any) -> np.ndarray | float:
    """The pre-race baseline finish time (what the time estimator corrects): exp(base_log_pace) * distance."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _out(np.exp(np.asarray(base_log_pace, float)) * _arr(race_distance_m))


def log_prerace_over_even_pace(prerace_projection_s: Any, even_pace_finish_s: Any) -> np.ndarray | float:
    """log(pre-race projection / even-pace finish): how far the pace so far is from the pre-race
    expectation (above 0: running faster than expected). The live model weighs the two by it."""
    prior, even = np.asarray(prerace_projection_s, float), np.asarray(even_pace_finish_s, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where((prior > 0) & (even > 0), np.log(prior / even), np.nan))


def pace_ratio_so_far(current_pace_s_per_km: Any, elapsed_s: Any, distance_done_m: Any) -> np.ndarray | float:
    """Current pace over the average pace so far (above 1: slowing down, e.g. fatigue)."""
    current, elapsed, done = _arr(current_pace_s_per_km), _arr(elapsed_s), _arr(distance_done_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        so_far = elapsed / done * 1000.0
        return _out(np.where((current > 0) & (so_far > 0) & (done > 0), current / so_far, np.nan))


def pace_ratio_vdot(race_distance_m: Any, current_pace_s_per_km: Any, vdot_projection_s: Any) -> np.ndarray | float:
    """Current pace over the athlete's VDOT race pace for this distance (below 1: faster than the
    best recent race fitness says is sustainable)."""
    current, race = _arr(current_pace_s_per_km), _arr(race_distance_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        vdot_pace = np.asarray(vdot_projection_s, float) / race * 1000.0
        return _out(np.where((current > 0) & (vdot_pace > 0), current / vdot_pace, np.nan))


# --- one-row twins (plain floats in, a float out; bit for bit the functions above) ----------

#: `base_log_pace`'s last resort, by numpy's log as the array code takes it.
_FALLBACK_LOG_PACE = float(np.log(FALLBACK_PACE_S_PER_M))
#: `prerace_projection_s` takes exp in plain floats inside this range (no overflow possible).
_PLAIN_EXP_ARGUMENT = 700.0


def _log_one(x: float) -> float:
    """`np.log` of one float without its warnings: numpy's own log (math.log differs in the last
    bit on some inputs), -inf at 0, NaN below 0 or for NaN, as numpy gives."""
    if x > 0.0:
        return float(np.log(x))
    return -math.inf if x == 0.0 else math.nan


def _divide_one(numerator: float, denominator: float) -> float:
    """`numerator / denominator` as numpy divides: x/0 is +-inf (sign of x times sign of 0), 0/0
    and NaN/0 are NaN; Python would raise ZeroDivisionError."""
    if denominator:  # NaN is truthy: NaN / NaN and x / NaN are NaN in Python too
        return numerator / denominator
    if numerator != numerator or numerator == 0.0:
        return math.nan
    return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)


def _distance_m_one(race_distance_m: Any) -> float:
    return one_number(race_distance_m)


def _log_distance_m_one(race_distance_m: Any) -> float:
    return _log_one(one_number(race_distance_m))


def _sex_male_one(sex: Any) -> float:
    if sex is None or type(sex) is str:
        return 1.0 if sex == "M" else 0.0
    return sex_male(sex)  # a numpy string, pd.NA ...: as the array code compares it


def _age_years_one(race_date: Any, birth_date: Any) -> float:
    return one_day_count(race_date, birth_date) / DAYS_PER_YEAR


def _days_since_prev_race_one(race_date: Any, prev_race_date: Any) -> float:
    return one_day_count(race_date, prev_race_date)


def _days_to_race_one(race_date: Any, ts: Any) -> float:
    return one_day_count(race_date, ts)


def _vdot_projection_s_one(race_distance_m: Any, vdot_best_90d: Any) -> float:
    distance, vdot = one_number(race_distance_m), one_number(vdot_best_90d)
    if not (0.0 < vdot < math.inf and 0.0 < distance < math.inf):
        return math.nan  # the array code's NaN, without ~1 ms of bisection on a placeholder
    return float(physiology.daniels_time_s(vdot, distance))


def _riegel_projection_s_one(race_distance_m: Any, prev_finish_time_s: Any, prev_distance_m: Any) -> float:
    return physiology.riegel_time_one_s(
        one_number(prev_finish_time_s), one_number(prev_distance_m), one_number(race_distance_m)
    )


def _log_pace_one(projection_s: Any, race_distance_m: Any) -> float:
    return _log_one(_divide_one(one_number(projection_s), one_number(race_distance_m)))


def _vdot_log_pace_one(race_distance_m: Any, vdot_projection_s: Any) -> float:
    return _log_pace_one(vdot_projection_s, race_distance_m)


def _riegel_log_pace_one(race_distance_m: Any, riegel_projection_s: Any) -> float:
    return _log_pace_one(riegel_projection_s, race_distance_m)


def _aerobic_vdot_one(
    run_hr_mean_42d: Any,
    run_log_speed_mean_42d: Any,
    run_log_speed_per_bpm_42d: Any,
    hr_rest: Any,
    hr_max: Any,
) -> float:
    return physiology.aerobic_vdot_one(
        one_number(run_hr_mean_42d),
        one_number(run_log_speed_mean_42d),
        one_number(run_log_speed_per_bpm_42d),
        one_number(hr_rest),
        one_number(hr_max),
    )


def _aerobic_projection_s_one(race_distance_m: Any, aerobic_vdot: Any) -> float:
    return _vdot_projection_s_one(race_distance_m, aerobic_vdot)


def _aerobic_log_pace_one(race_distance_m: Any, aerobic_projection_s: Any) -> float:
    return _log_pace_one(aerobic_projection_s, race_distance_m)


def _base_log_pace_one(
    avg_pace_28d_s_per_km: Any, vdot_log_pace: Any, riegel_log_pace: Any, aerobic_log_pace: Any
) -> float:
    vdot, riegel, aerobic = one_number(vdot_log_pace), one_number(riegel_log_pace), one_number(aerobic_log_pace)
    has_vdot, has_riegel = math.isfinite(vdot), math.isfinite(riegel)
    count = has_vdot + has_riegel
    races = math.nan
    if count:
        # the array code's sum: a missing baseline adds 0.0 (so -0.0 + 0.0 is +0.0 there too)
        races = ((vdot if has_vdot else 0.0) + (riegel if has_riegel else 0.0)) / count
    has_races, has_aerobic = math.isfinite(races), math.isfinite(aerobic)
    if has_races and has_aerobic:
        estimate = AEROBIC_WEIGHT * aerobic + (1.0 - AEROBIC_WEIGHT) * races
    else:
        estimate = races if has_races else aerobic
    if math.isfinite(estimate):
        return estimate
    training_pace = _log_one(one_number(avg_pace_28d_s_per_km) / 1000.0)
    return training_pace if math.isfinite(training_pace) else _FALLBACK_LOG_PACE


def _fraction_done_one(race_distance_m: Any, distance_done_m: Any) -> float:
    race, done = one_number(race_distance_m), one_number(distance_done_m)
    if not (race > 0.0 and done >= 0.0):
        return math.nan
    fraction = done / race
    return 1.0 if fraction >= 1.0 else fraction  # np.minimum: NaN (inf / inf) stays NaN


def _pace_ratio_28d_one(current_pace_s_per_km: Any, avg_pace_28d_s_per_km: Any) -> float:
    current, usual = one_number(current_pace_s_per_km), one_number(avg_pace_28d_s_per_km)
    return current / usual if current > 0.0 and usual > 0.0 else math.nan


def _hr_reserve_fraction_one(current_hr: Any, hr_rest: Any, hr_max: Any) -> float:
    return physiology.hr_reserve_fraction_one(one_number(current_hr), one_number(hr_rest), one_number(hr_max))


def _even_pace_finish_s_one(elapsed_s: Any, fraction_done: Any) -> float:
    elapsed, fraction = one_number(elapsed_s), one_number(fraction_done)
    return elapsed / fraction if fraction > 0.0 and elapsed >= 0.0 else math.nan


def _remaining_distance_m_one(race_distance_m: Any, distance_done_m: Any) -> float:
    race, done = one_number(race_distance_m), one_number(distance_done_m)
    if not (race > 0.0 and done >= 0.0):
        return math.nan
    left = race - done
    return 0.0 if left < 0.0 else left  # np.maximum: NaN (inf - inf) stays NaN


def _prerace_projection_s_one(race_distance_m: Any, base_log_pace: Any) -> float:
    base = one_number(base_log_pace)
    if not -_PLAIN_EXP_ARGUMENT < base < _PLAIN_EXP_ARGUMENT:  # NaN, or near overflow: numpy decides
        return float(prerace_projection_s(np.array([one_number(race_distance_m)]), np.array([base]))[0])
    return float(np.exp(base)) * one_number(race_distance_m)


def _log_prerace_over_even_pace_one(prerace_projection_s: Any, even_pace_finish_s: Any) -> float:
    prior, even = one_number(prerace_projection_s), one_number(even_pace_finish_s)
    return _log_one(prior / even) if prior > 0.0 and even > 0.0 else math.nan


def _pace_ratio_so_far_one(current_pace_s_per_km: Any, elapsed_s: Any, distance_done_m: Any) -> float:
    current, elapsed, done = one_number(current_pace_s_per_km), one_number(elapsed_s), one_number(distance_done_m)
    if current > 0.0 and done > 0.0:
        so_far = elapsed / done * 1000.0
        if so_far > 0.0:
            return current / so_far
    return math.nan


def _pace_ratio_vdot_one(race_distance_m: Any, current_pace_s_per_km: Any, vdot_projection_s: Any) -> float:
    current = one_number(current_pace_s_per_km)
    if current > 0.0:
        vdot_pace = _divide_one(one_number(vdot_projection_s), one_number(race_distance_m)) * 1000.0
        if vdot_pace > 0.0:
            return current / vdot_pace
    return math.nan


#: Every ODT, in an order where each one's on-demand inputs come before it.
ON_DEMAND_TRANSFORMATIONS: tuple[OnDemand, ...] = (
    OnDemand(
        "distance_m",
        distance_m,
        one=_distance_m_one,
        request=("race_distance_m",),
        unit="m",
        description="race distance",
    ),
    OnDemand("log_distance_m", log_distance_m, one=_log_distance_m_one, request=("race_distance_m",), unit="log m"),
    OnDemand("sex_male", sex_male, one=_sex_male_one, stored=("sex",), unit="0/1", description="1 for sex 'M', else 0"),
    OnDemand(
        "age_years",
        age_years,
        one=_age_years_one,
        request=("race_date",),
        stored=("birth_date",),
        unit="years",
        description="age on race day: days since birth / 365.25",
    ),
    OnDemand(
        "days_since_prev_race",
        days_since_prev_race,
        one=_days_since_prev_race_one,
        request=("race_date",),
        stored=("prev_race_date",),
        unit="days",
        description="days from the athlete's last race to race day; NaN without one",
    ),
    OnDemand(
        "days_to_race",
        days_to_race,
        one=_days_to_race_one,
        request=("race_date", "ts"),
        unit="days",
        description="calendar days from the request time's UTC day to race day",
    ),
    OnDemand(
        "vdot_projection_s",
        vdot_projection_s,
        one=_vdot_projection_s_one,
        request=("race_distance_m",),
        stored=("vdot_best_90d",),
        unit="s",
        description="Daniels equivalent time at the best VDOT of the last 90 days; NaN without one",
    ),
    OnDemand(
        "riegel_projection_s",
        riegel_projection_s,
        one=_riegel_projection_s_one,
        request=("race_distance_m",),
        stored=("prev_finish_time_s", "prev_distance_m"),
        unit="s",
        description="Riegel projection of the last race to the race distance; NaN without one",
    ),
    OnDemand(
        "vdot_log_pace",
        vdot_log_pace,
        one=_vdot_log_pace_one,
        request=("race_distance_m",),
        on_demand=("vdot_projection_s",),
        unit="log s/m",
    ),
    OnDemand(
        "riegel_log_pace",
        riegel_log_pace,
        one=_riegel_log_pace_one,
        request=("race_distance_m",),
        on_demand=("riegel_projection_s",),
        unit="log s/m",
    ),
    OnDemand(
        "aerobic_vdot",
        aerobic_vdot,
        one=_aerobic_vdot_one,
        stored=(
            "run_hr_mean_42d",
            "run_log_speed_mean_42d",
            "run_log_speed_per_bpm_42d",
            "hr_rest",
            "hr_max",
        ),
        unit="ml/kg/min",
        description="VDOT of the training runs: Daniels' oxygen cost of the speed their heart-rate line gives "
        "at 75 % of the heart-rate reserve, / 0.75; NaN without a line",
    ),
    OnDemand(
        "aerobic_projection_s",
        aerobic_projection_s,
        one=_aerobic_projection_s_one,
        request=("race_distance_m",),
        on_demand=("aerobic_vdot",),
        unit="s",
        description="Daniels equivalent time at the training runs' aerobic VDOT; NaN without one",
    ),
    OnDemand(
        "aerobic_log_pace",
        aerobic_log_pace,
        one=_aerobic_log_pace_one,
        request=("race_distance_m",),
        on_demand=("aerobic_projection_s",),
        unit="log s/m",
    ),
    OnDemand(
        "base_log_pace",
        base_log_pace,
        one=_base_log_pace_one,
        stored=("avg_pace_28d_s_per_km",),
        on_demand=("vdot_log_pace", "riegel_log_pace", "aerobic_log_pace"),
        unit="log s/m",
        description="half the races' estimate (mean of the VDOT and Riegel log paces), half the training runs' "
        "(aerobic_log_pace); either alone when the other is missing; else the 28-day training pace; "
        "else 5:00 min/km",
    ),
    OnDemand(
        "fraction_done",
        fraction_done,
        one=_fraction_done_one,
        request=("race_distance_m",),
        passed=("distance_done_m",),
        unit="0..1",
        description="distance done / race distance, capped at 1",
    ),
    OnDemand(
        "pace_ratio_28d",
        pace_ratio_28d,
        one=_pace_ratio_28d_one,
        passed=("current_pace_s_per_km",),
        stored=("avg_pace_28d_s_per_km",),
        unit="ratio",
        description="current pace / 28-day average pace (above 1 = slower than usual)",
    ),
    OnDemand(
        "hr_reserve_fraction",
        hr_reserve_fraction,
        one=_hr_reserve_fraction_one,
        passed=("current_hr",),
        stored=("hr_rest", "hr_max"),
        unit="0..1",
        description="(current_hr - hr_rest) / (hr_max - hr_rest); NaN without heart rate",
    ),
    OnDemand(
        "even_pace_finish_s",
        even_pace_finish_s,
        one=_even_pace_finish_s_one,
        passed=("elapsed_s",),
        on_demand=("fraction_done",),
        unit="s",
        description="elapsed_s / fraction_done: the finish time at the pace so far",
    ),
    OnDemand(
        "remaining_distance_m",
        remaining_distance_m,
        one=_remaining_distance_m_one,
        request=("race_distance_m",),
        passed=("distance_done_m",),
        unit="m",
        description="race distance - distance done, at least 0",
    ),
    OnDemand(
        "prerace_projection_s",
        prerace_projection_s,
        one=_prerace_projection_s_one,
        request=("race_distance_m",),
        on_demand=("base_log_pace",),
        unit="s",
        description="exp(base_log_pace) * race distance: the pre-race baseline finish time",
    ),
    OnDemand(
        "log_prerace_over_even_pace",
        log_prerace_over_even_pace,
        one=_log_prerace_over_even_pace_one,
        on_demand=("prerace_projection_s", "even_pace_finish_s"),
        unit="log ratio",
        description="log(prerace_projection_s / even_pace_finish_s); above 0 = faster so far than expected",
    ),
    OnDemand(
        "pace_ratio_so_far",
        pace_ratio_so_far,
        one=_pace_ratio_so_far_one,
        passed=("current_pace_s_per_km", "elapsed_s", "distance_done_m"),
        unit="ratio",
        description="current pace / average pace so far (above 1 = slowing down)",
    ),
    OnDemand(
        "pace_ratio_vdot",
        pace_ratio_vdot,
        one=_pace_ratio_vdot_one,
        request=("race_distance_m",),
        passed=("current_pace_s_per_km",),
        on_demand=("vdot_projection_s",),
        unit="ratio",
        description="current pace / VDOT race pace for the distance (below 1 = faster than VDOT says)",
    ),
)
REGISTRY: dict[str, OnDemand] = {t.name: t for t in ON_DEMAND_TRANSFORMATIONS}


@dataclass(frozen=True)
class Dependencies:
    """What a set of features reads, by kind (transitively through on-demand inputs)."""

    request: frozenset[str]
    passed: frozenset[str]
    stored: frozenset[str]
    on_demand: frozenset[str]


def dependencies(names: Iterable[str]) -> Dependencies:
    """The inputs of `names` by kind; a name that is not an ODT output counts as stored."""
    found: dict[str, set[str]] = {REQUEST: set(), PASSED: set(), STORED: set(), ON_DEMAND: set()}

    def visit(name: str) -> None:
        odt = REGISTRY.get(name)
        if odt is None:
            found[STORED].add(name)
            return
        if name in found[ON_DEMAND]:
            return
        found[ON_DEMAND].add(name)
        found[REQUEST].update(odt.request)
        found[PASSED].update(odt.passed)
        found[STORED].update(odt.stored)
        for inner in odt.on_demand:
            visit(inner)

    for name in names:
        visit(name)
    return Dependencies(*(frozenset(found[k]) for k in (REQUEST, PASSED, STORED, ON_DEMAND)))


def metadata(names: Iterable[str]) -> list[dict[str, Any]]:
    """The metadata of every ODT `names` need, in evaluation order (for an exported model)."""
    needed = dependencies(names).on_demand
    return [t.metadata() for t in ON_DEMAND_TRANSFORMATIONS if t.name in needed]


def compute(names: Iterable[str], values: Mapping[str, Any]) -> dict[str, Any]:
    """Each of `names` from `values`: an ODT output is computed (after the ODTs it needs), any
    other name is `values[name]` read as a number. Scalars in -> floats out; columns in -> arrays.

    Raises:
        MissingInput: an input (or a non-ODT name) is not in `values`.
    """
    done: dict[str, Any] = {}

    def get(name: str, needed_by: str) -> Any:
        if name in done:
            return done[name]
        odt = REGISTRY.get(name)
        if odt is None:
            if name not in values:
                raise MissingInput(name, STORED, needed_by)
            result = as_numbers(values[name])
        else:
            kwargs = {}
            for inner in odt.inputs:
                if inner in odt.on_demand:
                    kwargs[inner] = get(inner, name)
                elif inner in values:
                    kwargs[inner] = values[inner]
                else:
                    raise MissingInput(inner, odt.kind(inner), name)
            result = odt.fn(**kwargs)
        done[name] = result
        return result

    return {name: get(name, name) for name in names}


@dataclass(frozen=True)
class _OneRowPlan:
    """`compute_one`'s precomputed walk for one tuple of names."""

    steps: tuple[tuple[str, Callable[..., float], tuple[str, ...]], ...]  # (ODT, callable, its inputs in call order)
    outputs: tuple[tuple[str, bool], ...]  # (name, is an ODT output)


@functools.lru_cache(maxsize=64)
def _one_row_plan(names: tuple[str, ...]) -> _OneRowPlan:
    """The ODTs `names` need, each after its on-demand inputs (the order `compute` evaluates in)."""
    steps: list[tuple[str, Callable[..., float], tuple[str, ...]]] = []
    planned: set[str] = set()

    def visit(name: str) -> None:
        odt = REGISTRY.get(name)
        if odt is None or name in planned:
            return
        for inner in odt.on_demand:
            visit(inner)
        planned.add(name)
        steps.append((name, odt.one or odt.fn, tuple(inspect.signature(odt.fn).parameters)))

    for name in names:
        visit(name)
    return _OneRowPlan(tuple(steps), tuple((name, name in REGISTRY) for name in dict.fromkeys(names)))


def compute_one(names: Iterable[str], values: Mapping[str, Any]) -> dict[str, float]:
    """`compute` for one row of plain values (one request: numbers, None, dates or ISO strings),
    through each ODT's one-row twin: the same floats bit for bit, ~10x faster.

    The online feature view and the embedded predictor call this; training and batch scoring
    call `compute` on columns. Raises `MissingInput` exactly as `compute` does.
    """
    plan = _one_row_plan(tuple(names))
    # One namespace for the row and the ODT outputs: no ODT reads a request, passed or stored
    # value named like an ODT output (checked below at import), so nothing is shadowed.
    row = dict(values)
    try:
        for name, fn, inputs in plan.steps:
            row[name] = fn(*[row[inner] for inner in inputs])
        return {name: row[name] if is_odt else one_number(row[name]) for name, is_odt in plan.outputs}
    except KeyError:
        compute(names, values)  # raises the MissingInput `compute` raises for these values
        raise


def _check_no_value_is_named_like_an_odt() -> None:
    clashes = {
        (t.name, i) for t in ON_DEMAND_TRANSFORMATIONS for i in (*t.request, *t.passed, *t.stored) if i in REGISTRY
    }
    if clashes:
        raise ValueError(f"ODT inputs named like ODT outputs (compute_one would read the output): {sorted(clashes)}")


_check_no_value_is_named_like_an_odt()
