"""The serving API's pure parts: A/B hashing and weights, OIP request parsing, error mapping,
event checks and the inference-log format (the service itself: tests/integration/test_serving.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from athlete_platform.config import load_settings
from athlete_platform.errors import ConfigError, InvalidRequest, NotFound, PlatformError
from athlete_platform.inference.online_log import RECORD_SCHEMA
from athlete_platform.online.store import OnlineStoreUnavailable
from athlete_platform.serving import inference_log as ilog
from athlete_platform.serving.events import check_event, check_events
from athlete_platform.serving.http_errors import error_answer, field_path, validation_answer
from athlete_platform.serving.models import ModelUnavailable
from athlete_platform.serving.oip import OIPError, infer_response, parse_infer_request
from athlete_platform.serving.variants import Variant, VariantSplit, bucket
from tests.conftest import HOME

# --- A/B variants -----------------------------------------------------------------------------

SPLIT = (Variant("champion", 90), Variant("challenger", 10))
ATHLETES = [f"ath_{n:05d}" for n in range(20_000)]


def test_bucket_is_stable_across_processes():
    # Python's hash() is salted per process; the split must not be.
    code = "from athlete_platform.serving.variants import bucket; print(repr(bucket('ath_0042')))"
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(HOME / "src")}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert float(other.stdout) == bucket("ath_0042")
    assert 0.0 <= bucket("") < 1.0 and bucket("a") != bucket("b")


def test_weights_split_the_athletes_in_proportion_and_each_athlete_sticks():
    split = VariantSplit.of(SPLIT, {"champion", "challenger"})
    assigned = [split.assign(a) for a in ATHLETES]
    share = assigned.count("challenger") / len(assigned)
    assert 0.09 < share < 0.11
    assert [split.assign(a) for a in ATHLETES[:500]] == assigned[:500]


def test_a_missing_alias_is_skipped_and_its_weight_shared():
    split = VariantSplit.of((*SPLIT, Variant("canary", 10)), {"champion", "challenger"})
    assert split.skipped == ("canary",)
    assert split.shares == pytest.approx({"champion": 0.9, "challenger": 0.1})
    assert "canary" not in {split.assign(a) for a in ATHLETES[:2000]}
    alone = VariantSplit.of(SPLIT, {"champion"})
    assert {alone.assign(a) for a in ATHLETES[:2000]} == {"champion"} and alone.primary == "champion"


def test_zero_weight_and_no_alias_at_all():
    split = VariantSplit.of((Variant("champion", 0), Variant("challenger", 5)), {"champion", "challenger"})
    assert {split.assign(a) for a in ATHLETES[:500]} == {"challenger"}
    with pytest.raises(ValueError, match="none of the variants"):
        VariantSplit.of(SPLIT, set())


def test_serving_config_validates_variants_and_reads_the_key_from_the_env():
    conf = HOME / "conf" / "local.yaml"
    settings = load_settings(conf, environ={"ATHLETE_SERVING__API_KEY": "s3cret"})
    assert settings.serving.api_key.get_secret_value() == "s3cret" and "s3cret" not in repr(settings)
    assert load_settings(conf, environ={"ATHLETE_SERVING__API_KEY": ""}).serving.api_key is None
    for bad in ("[{alias: a, weight: 1}, {alias: a, weight: 2}]", "[{alias: a, weight: 0}]", "[]"):
        with pytest.raises(ConfigError, match="serving.variants"):
            load_settings(conf, environ={"ATHLETE_SERVING__VARIANTS": bad})
    assert {load_settings(HOME / "conf" / f).serving.port for f in ("local.yaml", "test.yaml")} == {15280}


# --- Open Inference Protocol ------------------------------------------------------------------

NAMES = ("a", "b", "c")


def tensor(name, shape, data, datatype="FP64"):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_one_tensor_per_input_in_any_order_and_both_shapes():
    body = {
        "inputs": [
            tensor("c", [2, 1], [5, 6], "INT32"),
            tensor("a", [2], [1.5, None]),
            tensor("b", [2], [3.0, 4.0], "FP32"),
        ]
    }
    parsed = parse_infer_request(body, NAMES, ("out",))
    assert parsed.matrix.shape == (2, 3) and parsed.matrix.dtype == np.float64
    np.testing.assert_array_equal(parsed.matrix, [[1.5, 3.0, 5.0], [np.nan, 4.0, 6.0]])


def test_a_single_matrix_tensor_flat_or_nested():
    flat = parse_infer_request({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, 6])]}, NAMES, ("out",))
    nested = parse_infer_request({"inputs": [tensor("x", [2, 3], [[1, 2, 3], [4, 5, 6]])]}, NAMES, ("out",))
    np.testing.assert_array_equal(flat.matrix, nested.matrix)
    assert flat.matrix[1].tolist() == [4.0, 5.0, 6.0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": [tensor("x", [2, 2], [1, 2, 3, 4])]}, r"shape \[N, 3\]"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3])]}, "holds 6 values but data has 3"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, 6], "BYTES")]}, "not supported"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, "6"])]}, "must be a number"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, True])]}, "must be a number"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, 1e400])]}, "not finite"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, 300], "INT8")]}, "outside the INT8 range"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, 1.5], "INT32")]}, "must be an integer"),
        ({"inputs": [tensor("x", [2, 3], [1, 2, 3, 4, 5, None], "INT32")]}, "must be a number"),
        ({"inputs": [tensor("x", [2, 3], [[1, 2], [3, 4], [5, 6]])]}, "nested data"),
        ({"inputs": [tensor("x", [-1, 3], [])]}, "non-negative"),
        ({"inputs": [tensor("x", [0, 3], [])]}, "1 to"),
        ({"inputs": [tensor("a", [2], [1, 2]), tensor("b", [2], [1, 2])]}, "missing: c"),
        (
            {"inputs": [tensor("a", [1], [1]), tensor("b", [1], [1]), tensor("c", [1], [1]), tensor("d", [1], [1])]},
            "unknown: d",
        ),
        ({"inputs": [tensor("a", [2], [1, 2]), tensor("b", [2], [1, 2]), tensor("c", [3], [1, 2, 3])]}, "same N"),
        ({"inputs": [tensor("x", [1, 3], [1, 2, 3])], "outputs": [{"name": "nope"}]}, "unknown output"),
        ({"inputs": [tensor("x", [1, 3], [1, 2, 3])], "extra": 1}, "unknown request field"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32"}]}, "data is missing"),
    ],
)
def test_bad_requests_are_400_naming_what_is_wrong(body, message):
    with pytest.raises(OIPError, match=message) as caught:
        parse_infer_request(body, NAMES, ("out",))
    assert caught.value.status == 400


def test_infer_response_is_fp32_of_shape_n():
    response = infer_response("time_estimator", "3", "req-1", "out", np.array([0.1, -0.2], np.float32))
    (output,) = response["outputs"]
    assert (output["datatype"], output["shape"]) == ("FP32", [2])
    assert output["data"] == [float(np.float32(0.1)), float(np.float32(-0.2))]
    assert response["model_version"] == "3" and response["id"] == "req-1"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "key"),
    [
        (InvalidRequest("bad", field="race_date"), 422, "field"),
        (NotFound("no athlete"), 404, "detail"),
        (OnlineStoreUnavailable("down"), 503, "detail"),
        (ModelUnavailable("not served"), 503, "detail"),
        (OIPError("bad tensor"), 400, "error"),
        (OIPError("no model", status=404), 404, "error"),
        (PlatformError("stale row"), 500, "detail"),
        (RuntimeError("bug"), 500, "detail"),
    ],
)
def test_errors_map_to_statuses(error, status, key):
    got, body, headers = error_answer(error, "rid", retry_after_s=9)
    assert got == status and key in body
    assert headers == ({"Retry-After": "9"} if status == 503 else {})
    if status == 500:
        assert "rid" in body["detail"] and "bug" not in body["detail"]  # no internals for an unknown error


def test_validation_errors_name_the_field_in_plain_words():
    assert field_path(("body", "race_distance_m", "list[constrained-float]", 1)) == "race_distance_m[1]"
    assert field_path(("path", "athlete_id")) == "athlete_id"
    assert field_path(("body",)) == "body"
    field, message = validation_answer(
        [{"loc": ("body", "race_date"), "type": "date_from_datetime_parsing", "msg": "Input should be a date"}]
    )
    assert field == "race_date" and "race_date" in message
    assert validation_answer([{"loc": ("body", 3), "type": "json_invalid", "ctx": {"error": "x"}}])[0] == "body"
    assert validation_answer([{"loc": ("body", "x"), "type": "extra_forbidden"}]) == (
        "x",
        "Field x is not a field of this request; remove it.",
    )


# --- session events ---------------------------------------------------------------------------

EVENT = {
    "session_id": "s1",
    "athlete_id": "ath_0001",
    "sport": "run",
    "start_time": "2024-08-27T07:00:00+02:00",
    "duration_s": 3000,
    "distance_m": 10000.0,
    "avg_hr": 150,
    "max_hr": 170,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_s": "3000"}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"distance_m": None}, "distance_m"),
        ({"is_race": "yes"}, "is_race"),
        ({"rpe": 4.5}, "rpe"),
        ({"rpe": 0}, "rpe"),
        ({"avg_hr": 180}, "avg_hr"),  # above max_hr
        ({"max_hr": 400}, "max_hr"),
        ({"start_time": "1850-01-01T00:00:00Z"}, "start_time"),
        ({"session_id": " s1"}, "session_id"),
        ({"sport": "chess"}, "sport"),
        ({"elevation_gain_m": -1}, "elevation_gain_m"),
    ],
)
def test_a_bad_event_names_its_field(change, field):
    with pytest.raises(InvalidRequest) as caught:
        check_event({**EVENT, **change})
    assert caught.value.field == field and field in str(caught.value)


def test_events_one_or_a_list():
    assert check_event(EVENT)["start_time"] is not None
    assert len(check_events([EVENT, EVENT])) == 2 and len(check_events(EVENT)) == 1
    with pytest.raises(InvalidRequest) as caught:
        check_events([EVENT, {**EVENT, "athlete_id": 5}])
    assert caught.value.field == "events[1].athlete_id"
    for body in ([], "text", [EVENT] * 1001):
        with pytest.raises(InvalidRequest):
            check_events(body)


# --- inference log ----------------------------------------------------------------------------


def test_log_record_has_the_schema_and_a_line_per_record(tmp_path):
    moment = datetime(2025, 1, 12, 8, 30, 0, 123456, tzinfo=UTC)
    entry = ilog.record(
        request_id="ab" * 16,
        route="race-predictions",
        athlete_id="ath_0001",
        variant="champion",
        model_name="m",
        model_version="3",
        feature_date="2025-01-11",
        race_date="2025-01-12",
        inputs={"race_distance_m": [5000.0]},
        outputs=[{"race_distance_m": 5000.0, "predicted_finish_time_s": float("nan")}],
        latency_ms=1.5,
        logged_at=moment,
    )
    assert list(entry) == list(RECORD_SCHEMA)
    assert entry["logged_at"] == "2025-01-12T08:30:00.123456Z"
    assert ilog.file_name(entry["logged_at"], 77) == "inference-2025011208-77.jsonl"
    line = ilog.encode(entry)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["outputs"][0]["predicted_finish_time_s"] is None  # NaN is not JSON
    with pytest.raises(ValueError, match="route"):
        ilog.record(**{**entry, "route": "other", "logged_at": moment})

    writer = ilog.InferenceLog(tmp_path / "log", max_queue=1000)
    writer.start()
    for _ in range(3):
        writer.log(entry)
    writer.close()
    (written,) = (tmp_path / "log").glob("inference-*.jsonl")
    assert written.name == f"inference-2025011208-{os.getpid()}.jsonl"
    assert [json.loads(x) for x in written.read_text().splitlines()] == [json.loads(line)] * 3
    assert writer.stats()["written"] == 3


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path):
    writer = ilog.InferenceLog(tmp_path, max_queue=2)  # not started: nothing drains the queue
    for _ in range(5):
        writer.log({"logged_at": "2025-01-12T08:30:00.000000Z"})
    assert (writer.pending, writer.dropped) == (2, 3)


def test_request_models_take_iso_text_for_days_and_strict_numbers():
    from pydantic import ValidationError

    from athlete_platform.serving.app import LiveCoachingRequest, RacePredictionRequest

    assert str(RacePredictionRequest(race_distance_m=[5000, 21097.5], race_date="2025-01-12").race_date) == "2025-01-12"
    for bad in ({"race_date": 1700000000}, {"race_date": True}, {"race_distance_m": "5000"}, {"race_distance_m": []}):
        with pytest.raises(ValidationError):
            RacePredictionRequest(**{"race_distance_m": 5000, **bad})
    with pytest.raises(ValidationError):
        LiveCoachingRequest(race_distance_m=10000, ts=5)
