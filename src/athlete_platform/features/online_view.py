"""Online feature vectors, Hopsworks-style, with no Spark: what the serving API calls per request.

`OnlineFeatureView.get_feature_vector(serving_keys=..., passed_features=...,
request_parameters=...)` builds one model input vector from the three input kinds of an
online request (DESIGN.md section 9):

- ``serving_keys`` ``{"athlete_id": "ath_0001"}`` -> the athlete's row in the online store
  (stored features, profile, last race, ``feature_date``); an athlete with no row is a
  `NotFound` error, never a vector of NaNs;
- ``passed_features`` -> values the caller computed; one named like a stored feature overrides
  the stored value; a name the view does not read is an `InvalidRequest` listing the allowed ones;
- ``request_parameters`` -> inputs of the on-demand transformations (``race_distance_m``,
  ``race_date``, ``ts``); a required one missing is an `InvalidRequest` naming it.

The vector holds the view's features in signature order (`MODEL_INPUTS` for the time
estimator): a ``list`` of floats (default), or a ``dict`` name -> float (same order) with
``return_type="dict"``. Missing values are NaN, the model's missing marker, as in batch scoring.

No skew with batch scoring: the vector is computed by the same on-demand transformations that
`model_inputs` runs on the batch frame (`on_demand.compute_one`, their one-row twins, equal to
the array code bit for bit), and a request without ``race_date`` predicts a race the day after
the row's ``feature_date``, as batch inference does; so for the same stored values the vector
equals the batch row value for value (tested).

The store is anything with ``get(keys) -> {key: row}`` (`athlete_platform.online.store.OnlineStore`
fits; the online package sits a layer above this one, so it is not imported here).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from athlete_platform.domain.arrays import calendar_days, one_day
from athlete_platform.errors import InvalidRequest, NotFound, PlatformError
from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand

#: The serving key of an online row (the same name as `online.store.KEY`).
ATHLETE_KEY = "athlete_id"
#: The day the stored features describe (the same name as `online.store.FEATURE_DATE`).
FEATURE_DATE = "feature_date"

#: Every request parameter an ODT may read, with what it must be.
REQUEST_PARAMETERS: dict[str, str] = {
    "race_distance_m": "the race distance in metres, a number > 0",
    "race_date": "the race day, an ISO date such as 2025-01-12",
    "ts": "the request time, an ISO-8601 date-time",
}
#: Stored or passed values that are not numbers (the rest must be numbers or null).
NON_NUMERIC_VALUES = {"sex": ("M", "F"), "birth_date": "date", "prev_race_date": "date", FEATURE_DATE: "date"}

ReturnType = Literal["list", "dict"]
Vector = list[float] | dict[str, float]


class OnlineRows(Protocol):
    """The part of the online store a feature view reads."""

    def get(self, keys: Sequence[str]) -> Mapping[str, Mapping[str, Any]]: ...


def race_day_after_features(row: Mapping[str, Any]) -> np.datetime64:
    """Default `race_date`: the day after the row's `feature_date`, as batch scoring predicts."""
    value = row.get(FEATURE_DATE)
    day_number = one_day(value)  # one plain value without numpy's per-call cost (~3 us)
    if day_number is None:
        day = calendar_days(value)
    else:
        day = np.datetime64("NaT") if day_number != day_number else np.datetime64(day_number, "D")
    if np.isnat(day):
        raise PlatformError(
            f"The online row of athlete {row.get(ATHLETE_KEY)!r} has no {FEATURE_DATE}: the online store was "
            "written by something other than materialization. Run `athlete-platform materialize` again."
        )
    return day + np.timedelta64(mi.RACE_DAYS_AFTER_FEATURE_DATE, "D")


#: The time estimator's request defaults: name -> function of the stored row.
TIME_ESTIMATOR_DEFAULTS: Mapping[str, Callable[[Mapping[str, Any]], Any]] = {"race_date": race_day_after_features}


class OnlineFeatureView:
    """Builds model input vectors from the online store, passed features and request parameters."""

    def __init__(
        self,
        store: OnlineRows | None = None,
        features: Sequence[str] = mi.MODEL_INPUTS,
        request_defaults: Mapping[str, Callable[[Mapping[str, Any]], Any]] = TIME_ESTIMATOR_DEFAULTS,
    ) -> None:
        """
        Args:
            store: The online store (`get(keys)`); may instead be given per call.
            features: The vector's names in signature order: ODT outputs or stored features.
            request_defaults: Request parameters that may be left out, each with a function of
                the stored row giving its value.
        """
        self._store = store
        self.features = tuple(features)
        needs = on_demand.dependencies(self.features)
        self._request = needs.request
        self._defaults = {k: v for k, v in request_defaults.items() if k in needs.request}
        #: Inputs the caller must pass (no stored value to fall back on).
        self.required_passed_features = tuple(sorted(needs.passed - needs.stored))
        #: Names `passed_features` may hold: the view's passed inputs and stored features.
        self.allowed_passed_features = tuple(sorted(needs.passed | needs.stored))
        #: Request parameters the view needs without a default.
        self.required_request_parameters = tuple(sorted(needs.request - set(self._defaults)))

    def get_feature_vector(
        self,
        serving_keys: Mapping[str, Any],
        passed_features: Mapping[str, Any] | None = None,
        request_parameters: Mapping[str, Any] | None = None,
        *,
        store: OnlineRows | None = None,
        return_type: ReturnType = "list",
    ) -> Vector:
        """One vector in signature order (see the module docstring for the three input kinds).

        Raises:
            NotFound: the online store has no row for the athlete.
            InvalidRequest: a bad serving key, an unknown or ill-typed passed feature or request
                parameter, or a missing required one; `field` names it.
            OnlineStoreUnavailable (from the store): the store cannot be reached.
        """
        return self.get_feature_vectors(
            [serving_keys], [passed_features or {}], [request_parameters or {}], store=store, return_type=return_type
        )[0]

    def get_feature_vectors(
        self,
        serving_keys: Sequence[Mapping[str, Any]],
        passed_features: Sequence[Mapping[str, Any]] | None = None,
        request_parameters: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        *,
        store: OnlineRows | None = None,
        return_type: ReturnType = "list",
    ) -> list[Vector]:
        """One vector per entry of `serving_keys`, with one store lookup for all of them.

        `passed_features` is a list aligned with `serving_keys`; `request_parameters` is such a
        list or one mapping for every entry. Errors as `get_feature_vector`.
        """
        store = store or self._store
        if store is None:
            raise PlatformError("No online store to read: pass store=... to the call or to OnlineFeatureView(store).")
        if return_type not in ("list", "dict"):
            raise ValueError(f"return_type must be 'list' or 'dict', not {return_type!r}")
        count = len(serving_keys)
        passed_list = [{}] * count if passed_features is None else list(passed_features)
        if request_parameters is None or isinstance(request_parameters, Mapping):
            request_list = [request_parameters or {}] * count
        else:
            request_list = list(request_parameters)
        if not len(passed_list) == len(request_list) == count:
            raise InvalidRequest(
                f"{count} serving keys but {len(passed_list)} passed_features and {len(request_list)} "
                "request_parameters entries: give one of each per serving key.",
                field="passed_features" if len(passed_list) != count else "request_parameters",
            )
        athletes = [self._athlete_id(keys) for keys in serving_keys]
        passed = [self._check_passed(p or {}) for p in passed_list]
        requests = [self._check_request(r or {}) for r in request_list]
        rows = store.get(list(dict.fromkeys(athletes)))
        unknown = tuple(dict.fromkeys(a for a in athletes if a not in rows))
        if unknown:
            raise NotFound(
                f"No online feature row for {ATHLETE_KEY} {', '.join(map(repr, unknown))}: the athlete is unknown, "
                "or has no features yet. Check the id; if the athlete is new, run the feature pipeline and "
                "`athlete-platform materialize`.",
                keys=unknown,
            )
        return [
            self._vector(rows[athlete], p, r, return_type)
            for athlete, p, r in zip(athletes, passed, requests, strict=True)
        ]

    def _vector(
        self, row: Mapping[str, Any], passed: dict[str, Any], request: dict[str, Any], return_type: ReturnType
    ) -> Vector:
        values = {**row, **passed}
        for name, default in self._defaults.items():
            if name not in request:
                request[name] = default(values)
        values.update(request)
        try:
            computed = on_demand.compute_one(self.features, values)
        except on_demand.MissingInput as missing:
            raise PlatformError(
                f"The online row of athlete {row.get(ATHLETE_KEY)!r} has no {missing.name!r} (needed by "
                f"{missing.needed_by!r}): the online store is older than this code or was not fully materialized. "
                "Run `athlete-platform materialize`."
            ) from None
        if return_type == "dict":
            return {name: float(computed[name]) for name in self.features}
        return [float(computed[name]) for name in self.features]

    @staticmethod
    def _athlete_id(serving_keys: Mapping[str, Any]) -> str:
        if not isinstance(serving_keys, Mapping) or set(serving_keys) != {ATHLETE_KEY}:
            raise InvalidRequest(
                f"serving_keys must be {{{ATHLETE_KEY!r}: <id>}}, got {serving_keys!r}", field="serving_keys"
            )
        athlete = serving_keys[ATHLETE_KEY]
        if not isinstance(athlete, str) or not athlete:
            raise InvalidRequest(f"{ATHLETE_KEY} must be a non-empty string, got {athlete!r}", field=ATHLETE_KEY)
        return athlete

    def _check_passed(self, passed: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(passed) - set(self.allowed_passed_features))
        if unknown:
            raise InvalidRequest(
                f"Unknown passed feature(s) {', '.join(unknown)}: this feature view reads only "
                f"{', '.join(self.allowed_passed_features)}"
                + (
                    f" (request parameters such as {', '.join(sorted(set(unknown) & set(REQUEST_PARAMETERS)))} "
                    "go in request_parameters)"
                    if set(unknown) & set(REQUEST_PARAMETERS)
                    else ""
                )
                + ".",
                field=unknown[0],
            )
        missing = [name for name in self.required_passed_features if name not in passed]
        if missing:
            raise InvalidRequest(
                f"Passed feature(s) {', '.join(missing)} missing: this feature view needs them in passed_features "
                "(null where the value is unknown, e.g. no heart-rate strap).",
                field=missing[0],
            )
        for name, value in passed.items():
            _check_value(name, value)
        return dict(passed)

    def _check_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(request) - set(REQUEST_PARAMETERS))
        if unknown:
            raise InvalidRequest(
                f"Unknown request parameter(s) {', '.join(unknown)}: the allowed ones are "
                + "; ".join(f"{k} ({v})" for k, v in REQUEST_PARAMETERS.items())
                + ".",
                field=unknown[0],
            )
        missing = [name for name in self.required_request_parameters if request.get(name) is None]
        if missing:
            raise InvalidRequest(
                f"Request parameter(s) {', '.join(missing)} missing: "
                + "; ".join(f"{name} is {REQUEST_PARAMETERS[name]}" for name in missing)
                + ".",
                field=missing[0],
            )
        checked = {}
        for name, value in request.items():
            if value is None:
                continue  # null = not given (the default, where there is one)
            checked[name] = _check_request_value(name, value)
        return checked


def _check_value(name: str, value: Any) -> None:
    """A passed value must be what the stored one is: a number (or null), else the kind listed."""
    kind = NON_NUMERIC_VALUES.get(name)
    if value is None:
        return
    if kind is None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidRequest(f"passed feature {name} must be a number or null, got {value!r}", field=name)
    elif kind == "date":
        _parse_day(name, value, "passed feature")
    elif value not in kind:
        raise InvalidRequest(f"passed feature {name} must be one of {', '.join(kind)}, got {value!r}", field=name)


def _check_request_value(name: str, value: Any) -> Any:
    if name == "race_distance_m":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise InvalidRequest(f"race_distance_m must be a number of metres > 0, got {value!r}", field=name)
        return float(value)
    return _parse_day(name, value, "request parameter")


def _parse_day(name: str, value: Any, kind: str) -> Any:
    if not isinstance(value, str | dt.date | np.datetime64):
        raise InvalidRequest(f"{kind} {name} must be an ISO-8601 date or date-time, got {value!r}", field=name)
    try:
        day = calendar_days(value)
    except ValueError:
        day = np.datetime64("NaT")
    if np.isnat(day):
        raise InvalidRequest(
            f"{kind} {name} must be an ISO-8601 date or date-time (e.g. 2025-01-12), got {value!r}", field=name
        )
    return value
