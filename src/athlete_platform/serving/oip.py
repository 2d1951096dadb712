"""Open Inference Protocol v2 (KServe, REST) on the raw model signatures: pure parsing and shaping.

An infer request is `{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data",
"parameters"?}], "outputs"?: [{"name"}]}`. The inputs may be given two ways:

- one tensor per signature input, named as in the signature, each of shape `[N]` or `[N, 1]`;
- one tensor of shape `[N, F]` (any name) whose F columns are the signature's inputs in order.

`data` is row-major, flat or nested to match `shape`. Datatypes FP16/FP32/FP64 and INT8..INT64,
UINT8..UINT64 are read as numbers; in an FP tensor `null` (or NaN) is a missing value (the
model's missing marker), infinity is refused. The response's one output is the model's raw
output, FP32, shape `[N]`. Anything wrong is an `OIPError` (400, or 404 for an unknown model or
version) whose message names the tensor and what is wrong; the protocol's error body is
`{"error": "<message>"}`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Most rows one infer request may score (bodies are size-limited too).
MAX_ROWS = 10_000
FLOAT_TYPES = {"FP16", "FP32", "FP64"}
INT_RANGES = {
    **{f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
    **{f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)},
}
DATATYPES = FLOAT_TYPES | set(INT_RANGES)


class OIPError(Exception):
    """A request the protocol refuses: `status` 400 (bad request) or 404 (no such model/version)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    matrix: np.ndarray  # float64 [rows, inputs] in signature order
    outputs: tuple[str, ...]  # requested output names (empty: all)
    tensors: tuple[dict[str, Any], ...]  # the inputs as given, for the inference log


def parse_infer_request(body: Any, input_names: Sequence[str], output_names: Sequence[str]) -> InferRequest:
    """An infer request body (parsed JSON) -> the model's input matrix; `OIPError` when invalid."""
    if not isinstance(body, Mapping):
        raise OIPError("the request body must be a JSON object with an 'inputs' list")
    unknown = sorted(set(body) - {"id", "parameters", "inputs", "outputs"})
    if unknown:
        raise OIPError(f"unknown request field(s) {', '.join(map(repr, unknown))}: use id, parameters, inputs, outputs")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise OIPError("'id' must be a string")
    if body.get("parameters") is not None and not isinstance(body["parameters"], Mapping):
        raise OIPError("'parameters' must be an object")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise OIPError("'inputs' must be a non-empty list of tensors {name, shape, datatype, data}")
    parsed = [_tensor(t, i) for i, t in enumerate(tensors)]
    matrix = _matrix(parsed, tuple(input_names))
    outputs = _requested_outputs(body.get("outputs"), output_names)
    return InferRequest(request_id, matrix, outputs, tuple(dict(t) for t in tensors))


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    values: np.ndarray  # float64, flat, row-major


def _tensor(tensor: Any, position: int) -> _Tensor:
    where = f"inputs[{position}]"
    if not isinstance(tensor, Mapping):
        raise OIPError(f"{where} must be an object {{name, shape, datatype, data}}")
    unknown = sorted(set(tensor) - {"name", "shape", "datatype", "data", "parameters"})
    if unknown:
        raise OIPError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise OIPError(f"{where}.name must be a non-empty string")
    where = f"input {name!r}"
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_ROWS * 1000 for d in shape)
    ):
        raise OIPError(f"{where}: shape must be [N] or [N, F] with non-negative integers, got {shape!r}")
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise OIPError(f"{where}: datatype {datatype!r} is not supported; use one of {', '.join(sorted(DATATYPES))}")
    if tensor.get("parameters") is not None and not isinstance(tensor["parameters"], Mapping):
        raise OIPError(f"{where}: parameters must be an object")
    if "data" not in tensor:
        raise OIPError(f"{where}: data is missing")
    expected = math.prod(shape)
    flat = _flatten(tensor["data"], shape, where)
    if len(flat) != expected:
        raise OIPError(f"{where}: shape {shape} holds {expected} values but data has {len(flat)}")
    return _Tensor(name, tuple(shape), _numbers(flat, datatype, where))


def _flatten(data: Any, shape: list[int], where: str) -> list[Any]:
    """Row-major values of flat or nested `data`; nesting, when used, must match `shape`."""
    if not isinstance(data, list):
        raise OIPError(f"{where}: data must be a list (flat, row-major, or nested as the shape)")
    if not any(isinstance(x, list) for x in data):
        return data
    if len(shape) != 2 or len(data) != shape[0]:
        raise OIPError(f"{where}: nested data must have shape[0] = {shape[0]} rows of {shape[-1]} values")
    flat: list[Any] = []
    for row in data:
        if not isinstance(row, list) or len(row) != shape[1] or any(isinstance(x, list | dict) for x in row):
            raise OIPError(f"{where}: each nested row must be a list of {shape[1]} numbers")
        flat.extend(row)
    return flat


def _numbers(values: list[Any], datatype: str, where: str) -> np.ndarray:
    out = np.empty(len(values), np.float64)
    is_float = datatype in FLOAT_TYPES
    low, high = INT_RANGES.get(datatype, (None, None))
    for i, value in enumerate(values):
        if value is None and is_float:
            out[i] = np.nan
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OIPError(f"{where}: value {i} must be a number ({datatype}), got {_short(value)}")
        if is_float:
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isinf(number):
                raise OIPError(f"{where}: value {i} is not finite ({_short(value)}); use null for a missing value")
            out[i] = number
        else:
            if not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
                raise OIPError(f"{where}: value {i} must be an integer ({datatype}), got {_short(value)}")
            if not low <= value <= high:
                raise OIPError(f"{where}: value {i} is outside the {datatype} range, got {_short(value)}")
            out[i] = float(value)
    return out


def _matrix(tensors: list[_Tensor], input_names: tuple[str, ...]) -> np.ndarray:
    width = len(input_names)
    if len(tensors) == 1 and tensors[0].name not in input_names:
        (tensor,) = tensors
        if len(tensor.shape) != 2 or tensor.shape[1] != width:
            raise OIPError(
                f"input {tensor.name!r}: a single tensor must have shape [N, {width}] (the signature's inputs "
                f"{', '.join(input_names)} as columns); or send one tensor per input, named as in the signature"
            )
        rows = tensor.shape[0]
        _check_rows(rows)
        return tensor.values.reshape(rows, width)
    names = [t.name for t in tensors]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    unknown = [n for n in names if n not in input_names]
    missing = [n for n in input_names if n not in names]
    if duplicated or unknown or missing:
        raise OIPError(
            "the inputs must be one tensor per signature input"
            + (f"; duplicated: {', '.join(duplicated)}" if duplicated else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + f" (the signature's inputs: {', '.join(input_names)})"
        )
    by_name = {t.name: t for t in tensors}
    rows = by_name[input_names[0]].shape[0]
    for tensor in tensors:
        if tensor.shape not in ((rows,), (rows, 1)):
            raise OIPError(
                f"input {tensor.name!r}: shape {list(tensor.shape)} does not fit; every per-input tensor must have "
                f"shape [N] or [N, 1] with the same N ({rows} for {input_names[0]!r})"
            )
    _check_rows(rows)
    return np.column_stack([by_name[name].values for name in input_names]).reshape(rows, width)


def _check_rows(rows: int) -> None:
    if rows < 1 or rows > MAX_ROWS:
        raise OIPError(f"a request scores 1 to {MAX_ROWS} rows, this one has {rows}")


def _requested_outputs(outputs: Any, output_names: Sequence[str]) -> tuple[str, ...]:
    if outputs is None:
        return ()
    named = isinstance(outputs, list) and all(
        isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in outputs
    )
    if not named:
        raise OIPError("'outputs' must be a list of objects {name}")
    names = tuple(o["name"] for o in outputs)
    unknown = [n for n in names if n not in output_names]
    if unknown:
        raise OIPError(f"unknown output(s) {', '.join(unknown)}: this model has {', '.join(output_names)}")
    return names


def infer_response(
    model_name: str, model_version: str, request_id: str, output_name: str, raw: np.ndarray
) -> dict[str, Any]:
    """The protocol's response: the raw output as one FP32 tensor of shape [N]."""
    values = np.asarray(raw, np.float32).reshape(-1)
    return {
        "model_name": model_name,
        "model_version": model_version,
        "id": request_id,
        "outputs": [
            {"name": output_name, "shape": [int(values.size)], "datatype": "FP32", "data": [float(v) for v in values]}
        ],
    }


def model_metadata(
    name: str,
    versions: Sequence[str],
    input_names: Sequence[str],
    input_datatypes: Sequence[str],
    output_names: Sequence[str],
) -> dict[str, Any]:
    """The protocol's model metadata: signature inputs as [-1] tensors, raw output FP32."""
    return {
        "name": name,
        "versions": list(versions),
        "platform": "xgboost",
        "inputs": [
            {"name": n, "datatype": d, "shape": [-1]} for n, d in zip(input_names, input_datatypes, strict=True)
        ],
        "outputs": [{"name": n, "datatype": "FP32", "shape": [-1]} for n in output_names],
    }


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
