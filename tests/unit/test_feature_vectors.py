"""Online feature vectors (Hopsworks-style) on a real SQLite online store, and zero skew with batch.

The skew test builds, from the same tiny feature / race / athlete frames, (a) the batch scoring
rows exactly as batch inference does (`scoring_rows`, the columns `score` ships, `model_inputs`
inside `mapInPandas`) and (b) the online rows exactly as materialization does (`online_rows`,
`to_online_row`, a SQLite store), then asks the online view for the same athletes and
distances: every input value and every predicted time must be equal, not close.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
import uuid

import numpy as np
import pandas as pd
import pytest

from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.errors import InvalidRequest, NotFound, PlatformError
from athlete_platform.features import model_inputs as mi
from athlete_platform.features.feature_view import FeatureView
from athlete_platform.features.online_view import OnlineFeatureView
from athlete_platform.features.rolling import FEATURE_COLUMNS
from athlete_platform.online.materialize import online_rows, to_online_row
from athlete_platform.online.sqlite_store import SQLiteOnlineStore

FEATURE_DAY = dt.date(2024, 10, 26)
LIVE = ("fraction_done", "pace_ratio_28d", "hr_reserve_fraction", "even_pace_finish_s")


def stored_row(athlete_id: str = "a1", **over) -> dict:
    """An online row as materialization writes it (to_online_row of the Spark values)."""
    row = {name: 1.0 for name in FEATURE_COLUMNS}
    row.update(
        athlete_id=athlete_id,
        feature_date=FEATURE_DAY,
        ctl=42.0,
        atl=50.0,
        sessions_7d=4,
        vdot_best_90d=50.0,
        avg_pace_28d_s_per_km=300.0,
        sex="F",
        birth_date=dt.date(1990, 10, 27),
        weight_kg=58.0,
        hr_rest=48.0,
        hr_max=188.0,
        prev_race_date=dt.date(2024, 9, 27),
        prev_distance_m=5000.0,
        prev_finish_time_s=1200.0,
        source_version=7,
    )
    row.update(over)
    return to_online_row(row)


@pytest.fixture
def store(tmp_path):
    with SQLiteOnlineStore(tmp_path / "online.db") as opened:
        opened.apply(upserts=[stored_row("a1"), stored_row("a2", sex="M", vdot_best_90d=None)], source_version=7)
        yield opened


def by_name(vector: list[float]) -> dict[str, float]:
    return dict(zip(mi.MODEL_INPUTS, vector, strict=True))


def test_stored_features_and_request_parameters_give_the_models_inputs_in_signature_order(store):
    view = OnlineFeatureView(store)
    vector = view.get_feature_vector({"athlete_id": "a1"}, request_parameters={"race_distance_m": 10000.0})
    assert isinstance(vector, list) and len(vector) == len(mi.MODEL_INPUTS)
    v = by_name(vector)
    assert (v["distance_m"], v["log_distance_m"]) == (10000.0, math.log(10000.0))
    assert (v["ctl"], v["atl"], v["sessions_7d"], v["hr_max"], v["sex_male"]) == (42.0, 50.0, 4.0, 188.0, 0.0)
    # no race_date: a race the day after the features' day, as batch scoring predicts
    assert v["days_since_prev_race"] == 30.0  # 2024-09-27 -> 2024-10-27
    assert v["age_years"] == pytest.approx(34.0, abs=0.01)
    assert math.exp(v["riegel_log_pace"]) * 10000 == pytest.approx(1200 * 2**1.06)
    as_dict = view.get_feature_vector(
        {"athlete_id": "a1"}, request_parameters={"race_distance_m": 10000.0}, return_type="dict"
    )
    assert list(as_dict) == list(mi.MODEL_INPUTS) and list(as_dict.values()) == vector


def test_race_date_request_parameter_moves_the_date_odts(store):
    view = OnlineFeatureView(store)
    v = by_name(
        view.get_feature_vector(
            {"athlete_id": "a1"}, request_parameters={"race_distance_m": 5000, "race_date": "2024-11-26"}
        )
    )
    assert v["days_since_prev_race"] == 60.0
    assert v["distance_m"] == 5000.0
    # null means "not given": the default day; a parameter this model does not read is accepted
    same_as_default = view.get_feature_vector(
        {"athlete_id": "a1"}, request_parameters={"race_distance_m": 5000, "race_date": None, "ts": None}
    )
    assert by_name(same_as_default)["days_since_prev_race"] == 30.0


def test_a_missing_stored_value_is_nan_and_the_baselines_fall_back(store):
    v = by_name(OnlineFeatureView(store).get_feature_vector({"athlete_id": "a2"}, {}, {"race_distance_m": 5000.0}))
    assert math.isnan(v["vdot_best_90d"]) and math.isnan(v["vdot_log_pace"])
    assert v["base_log_pace"] == v["riegel_log_pace"]  # the one baseline left
    assert v["sex_male"] == 1.0


def test_a_passed_feature_overrides_the_stored_one(store):
    view = OnlineFeatureView(store)
    request = {"race_distance_m": 10000.0}
    stored = by_name(view.get_feature_vector({"athlete_id": "a1"}, request_parameters=request))
    passed = by_name(
        view.get_feature_vector(
            {"athlete_id": "a1"}, passed_features={"ctl": 61.5, "vdot_best_90d": None}, request_parameters=request
        )
    )
    assert passed["ctl"] == 61.5 and stored["ctl"] == 42.0
    # an override reaches the ODTs that read it: no VDOT now, so the base is Riegel's alone
    assert math.isnan(passed["vdot_log_pace"]) and passed["base_log_pace"] == passed["riegel_log_pace"]
    assert {k for k in mi.MODEL_INPUTS if not _same(stored[k], passed[k])} == {
        "ctl",
        "vdot_best_90d",
        "vdot_log_pace",
        "base_log_pace",
    }


def test_passed_features_feed_the_live_odts(store):
    view = OnlineFeatureView(store, features=LIVE)
    vector = view.get_feature_vector(
        {"athlete_id": "a1"},
        passed_features={
            "distance_done_m": 2500.0,
            "elapsed_s": 750.0,
            "current_hr": 118.0,
            "current_pace_s_per_km": 330.0,
        },
        request_parameters={"race_distance_m": 10000.0},
        return_type="dict",
    )
    assert vector == {
        "fraction_done": 0.25,
        "pace_ratio_28d": pytest.approx(1.1),
        "hr_reserve_fraction": 0.5,  # (118 - 48) / (188 - 48)
        "even_pace_finish_s": 3000.0,
    }
    no_hr = view.get_feature_vector(
        {"athlete_id": "a1"},
        passed_features={"distance_done_m": 0.0, "elapsed_s": 0.0, "current_hr": None, "current_pace_s_per_km": 300.0},
        request_parameters={"race_distance_m": 10000.0},
        return_type="dict",
    )
    assert no_hr["fraction_done"] == 0.0 and math.isnan(no_hr["hr_reserve_fraction"])
    assert math.isnan(no_hr["even_pace_finish_s"])


def test_unknown_athlete_is_not_found_never_a_row_of_nans(store):
    view = OnlineFeatureView(store)
    with pytest.raises(NotFound, match="ath_9999.*materialize") as raised:
        view.get_feature_vector({"athlete_id": "ath_9999"}, request_parameters={"race_distance_m": 5000.0})
    assert raised.value.keys == ("ath_9999",)
    with pytest.raises(NotFound) as raised:
        view.get_feature_vectors(
            [{"athlete_id": "a1"}, {"athlete_id": "x"}], request_parameters={"race_distance_m": 5e3}
        )
    assert raised.value.keys == ("x",)


def test_unknown_passed_feature_lists_the_allowed_ones(store):
    view = OnlineFeatureView(store)
    with pytest.raises(InvalidRequest, match=r"Unknown passed feature\(s\) heart_rate: .*reads only .*ctl") as raised:
        view.get_feature_vector({"athlete_id": "a1"}, {"heart_rate": 150}, {"race_distance_m": 5000.0})
    assert raised.value.field == "heart_rate"
    assert "prev_race_date" in str(raised.value) and "vdot_best_90d" in str(raised.value)
    with pytest.raises(InvalidRequest, match="race_distance_m go in request_parameters"):
        view.get_feature_vector({"athlete_id": "a1"}, {"race_distance_m": 5000.0})


def test_missing_request_parameter_is_named(store):
    view = OnlineFeatureView(store)
    with pytest.raises(InvalidRequest, match="race_distance_m missing: race_distance_m is the race distance") as raised:
        view.get_feature_vector({"athlete_id": "a1"}, request_parameters={"race_date": "2024-11-01"})
    assert raised.value.field == "race_distance_m"
    with pytest.raises(InvalidRequest, match="Passed feature.*current_hr missing"):
        OnlineFeatureView(store, features=("hr_reserve_fraction",)).get_feature_vector({"athlete_id": "a1"})


@pytest.mark.parametrize(
    ("request_parameters", "passed", "field"),
    [
        ({"race_distance_m": -1.0}, {}, "race_distance_m"),
        ({"race_distance_m": "10k"}, {}, "race_distance_m"),
        ({"race_distance_m": True}, {}, "race_distance_m"),
        ({"race_distance_m": 5000.0, "race_date": "next sunday"}, {}, "race_date"),
        ({"race_distance_m": 5000.0, "distance": 3}, {}, "distance"),
        ({"race_distance_m": 5000.0}, {"ctl": "high"}, "ctl"),
        ({"race_distance_m": 5000.0}, {"sex": "X"}, "sex"),
    ],
)
def test_bad_values_are_invalid_requests_naming_the_field(store, request_parameters, passed, field):
    with pytest.raises(InvalidRequest) as raised:
        OnlineFeatureView(store).get_feature_vector({"athlete_id": "a1"}, passed, request_parameters)
    assert raised.value.field == field and field in str(raised.value)


def test_bad_serving_keys_are_invalid_requests(store):
    view = OnlineFeatureView(store)
    for keys in ({"athlete": "a1"}, {"athlete_id": ""}, {"athlete_id": "a1", "day": 1}):
        with pytest.raises(InvalidRequest, match="athlete_id"):
            view.get_feature_vector(keys, request_parameters={"race_distance_m": 5000.0})


class CountingStore:
    """The real SQLite store, counting lookups (to show a batch of vectors is one lookup)."""

    def __init__(self, store):
        self.store, self.lookups = store, 0

    def get(self, keys):
        self.lookups += 1
        return self.store.get(keys)


def test_feature_vectors_are_one_lookup_and_equal_one_by_one(store):
    counting = CountingStore(store)
    view = OnlineFeatureView()
    keys = [{"athlete_id": a} for a in ("a1", "a2", "a1")]
    requests = [{"race_distance_m": d} for d in (5000.0, 10000.0, 42195.0)]
    vectors = view.get_feature_vectors(keys, [{}, {}, {"ctl": 3.0}], requests, store=counting)
    assert counting.lookups == 1
    for k, r, p, vector in zip(keys, requests, [{}, {}, {"ctl": 3.0}], vectors, strict=True):
        assert vector == pytest.approx(view.get_feature_vector(k, p, r, store=store), nan_ok=True)
    with pytest.raises(InvalidRequest, match="3 serving keys but 2 passed_features"):
        view.get_feature_vectors(keys, [{}, {}], requests, store=store)
    with pytest.raises(PlatformError, match="No online store"):
        view.get_feature_vector(keys[0], request_parameters=requests[0])


def test_a_row_missing_a_stored_input_says_to_materialize(tmp_path):
    with SQLiteOnlineStore(tmp_path / "old.db") as old:
        row = stored_row("a1")
        del row["prev_race_date"]
        old.apply(upserts=[row])
        with pytest.raises(PlatformError, match="no 'prev_race_date'.*materialize"):
            OnlineFeatureView(old).get_feature_vector({"athlete_id": "a1"}, request_parameters={"race_distance_m": 5e3})


def test_the_online_view_needs_no_spark_and_the_feature_view_has_the_same_methods():
    code = (
        "import sys\n"
        "from athlete_platform.features.online_view import OnlineFeatureView\n"
        "class S:\n"
        "    def get(self, keys):\n"
        "        return {'a': {'athlete_id': 'a', 'feature_date': '2024-10-26', 'sex': 'F'}}\n"
        "v = OnlineFeatureView(S(), features=('sex_male', 'distance_m'))\n"
        "vector = v.get_feature_vector({'athlete_id': 'a'}, request_parameters={'race_distance_m': 5000})\n"
        "assert vector == [0.0, 5000.0], vector\n"
        "assert not [m for m in sys.modules if m.startswith(('pyspark', 'py4j'))], 'spark imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert issubclass(FeatureView, OnlineFeatureView)


# --- zero skew: the online vector equals the batch scoring row --------------------------------


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def skew_frames(spark):
    """Feature rows of 5 athletes over 3 days (nulls where real rows have them), races, profiles."""
    from athlete_platform.lakehouse.tables import ATHLETE_ROLLING_FEATURES

    rng = np.random.default_rng(5)
    kinds = {c.name: c.type for c in ATHLETE_ROLLING_FEATURES.columns}
    rows = []
    for n, athlete in enumerate(("s1", "s2", "s3", "s4", "s5")):
        for back in (2, 1, 0):
            row = {"athlete_id": athlete, "feature_date": FEATURE_DAY - dt.timedelta(days=back)}
            for name in FEATURE_COLUMNS[1:]:
                row[name] = int(rng.integers(0, 30)) if kinds[name] == "INT" else float(rng.uniform(0.5, 80.0))
            row["avg_pace_28d_s_per_km"] = None if athlete == "s4" else float(rng.uniform(250, 400))
            row["vdot_best_90d"] = None if athlete in ("s2", "s4") else float(rng.uniform(35, 65))
            row["acwr_rolling"] = None if n % 2 else row["acwr_rolling"]
            row["monotony_7d"] = None if athlete == "s5" else row["monotony_7d"]
            rows.append(row)
    ddl = ", ".join(f"{c} {kinds[c]}" for c in ("athlete_id", *FEATURE_COLUMNS))
    features = spark.createDataFrame([tuple(r[c] for c in ("athlete_id", *FEATURE_COLUMNS)) for r in rows], ddl)
    races = spark.createDataFrame(
        [
            ("s1", dt.date(2024, 9, 1), "r1", 10000.0, 2500.0),
            ("s1", dt.date(2024, 10, 6), "r2", 5000.0, 1180.0),
            ("s3", FEATURE_DAY, "r3", 21097.5, 5600.0),  # on the features' day: counts
            ("s4", dt.date(2024, 8, 1), "r4", 42195.0, 13000.0),
            ("s5", FEATURE_DAY + dt.timedelta(days=3), "r5", 5000.0, 1300.0),  # after: does not
        ],
        "athlete_id string, race_date date, session_id string, distance_m double, finish_time_s double",
    )
    athletes = spark.createDataFrame(
        [
            ("s1", "F", dt.date(1990, 5, 1), 58.0, 48.0, 188.0),
            ("s2", "M", dt.date(1985, 1, 1), 70.0, 50.0, 185.0),
            ("s3", "M", dt.date(1979, 12, 31), 66.0, 45.0, 180.0),
            ("s4", "F", dt.date(2000, 2, 29), None, 52.0, 195.0),
            ("s5", "F", dt.date(1995, 7, 14), 61.0, 55.0, 190.0),
        ],
        "athlete_id string, sex string, birth_date date, weight_kg double, hr_rest double, hr_max double",
    )
    return features, races, athletes


@pytest.fixture(scope="module")
def skew(local_spark, tmp_path_factory):
    from pyspark.sql import functions as F

    from athlete_platform.inference import batch

    features, races, athletes = skew_frames(local_spark)
    # (a) batch: the latest feature row per athlete (what `get_latest(as_of)` gives) x distances
    latest = features.where(F.col("feature_date") == F.lit(FEATURE_DAY))
    rows = batch.scoring_rows(latest, races, athletes)
    input_schema = "athlete_id string, race_distance_m double, " + ", ".join(f"{c} double" for c in mi.MODEL_INPUTS)

    def inputs_of(batches):
        for frame in batches:
            inputs = mi.model_inputs(frame)
            yield inputs.assign(
                athlete_id=frame["athlete_id"].to_numpy(), race_distance_m=frame["distance_m"].to_numpy()
            )

    batch_inputs = rows.select(*batch.SCORING_COLUMNS).mapInPandas(inputs_of, input_schema).toPandas()
    # (b) online: rows as materialization builds them, in a real SQLite store
    store = SQLiteOnlineStore(tmp_path_factory.mktemp("online") / "online.db")
    upserts = [to_online_row(r.asDict()) for r in online_rows(features, athletes, races, source_version=3).collect()]
    store.apply(upserts=upserts, source_version=3)
    # a tiny model trained on these very inputs, so its splits fall among their values
    import xgboost as xgb

    x = batch_inputs[list(mi.MODEL_INPUTS)].to_numpy(np.float32)
    y = np.random.default_rng(1).normal(0, 0.05, len(x))
    booster = xgb.train({"max_depth": 3, "eta": 0.3}, xgb.DMatrix(x, y, missing=np.nan), num_boost_round=20)
    model_file = tmp_path_factory.mktemp("model") / "model.ubj"
    booster.save_model(model_file)
    model = batch.ChampionModel("time_estimator", f"skew-{uuid.uuid4().hex[:8]}", model_file, tuple(mi.MODEL_INPUTS))
    predicted = batch.score(local_spark, rows, model).toPandas()
    yield batch_inputs, predicted, store, booster
    store.close()


def test_online_vectors_equal_the_batch_scoring_rows_value_for_value(skew):
    batch_inputs, _, store, _ = skew
    assert len(batch_inputs) == 5 * len(RACE_DISTANCES_M)
    view = OnlineFeatureView(store)
    for row in batch_inputs.to_dict("records"):
        vector = view.get_feature_vector(
            {"athlete_id": row["athlete_id"]}, request_parameters={"race_distance_m": row["race_distance_m"]}
        )
        differing = [
            (name, got, row[name])
            for name, got in zip(mi.MODEL_INPUTS, vector, strict=True)
            if not _same(got, row[name])
        ]
        assert not differing, (row["athlete_id"], row["race_distance_m"], differing)
    # the frames cover the cases that could skew: no race, a race on the day, no VDOT, no pace
    nan_columns = {c for c in mi.MODEL_INPUTS if batch_inputs[c].isna().any()}
    assert {"riegel_log_pace", "days_since_prev_race", "vdot_log_pace", "acwr_rolling", "weight_kg"} <= nan_columns


def test_online_predictions_equal_the_batch_predictions_exactly(skew):
    _, predicted, store, booster = skew
    view = OnlineFeatureView(store)
    keys = [{"athlete_id": a} for a in predicted["athlete_id"]]
    requests = [{"race_distance_m": d} for d in predicted["race_distance_m"]]
    vectors = view.get_feature_vectors(keys, request_parameters=requests, return_type="dict")
    inputs = pd.DataFrame(vectors, columns=list(mi.MODEL_INPUTS))
    for i, vector in enumerate(vectors):  # one request at a time, as the API will
        one = np.asarray([list(vector.values())], dtype=np.float32)
        residual = booster.inplace_predict(one, missing=np.nan)
        online = float(mi.predicted_time_s(residual, inputs.iloc[[i]])[0])
        assert online == predicted["predicted_finish_time_s"].iloc[i], (keys[i], requests[i])
