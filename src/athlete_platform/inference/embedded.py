"""The embedded predictor: an exported model folder, loaded and called in-process.

`athlete-platform export-model` (`inference.export`) writes a folder; `EmbeddedPredictor.load`
reads it back without Spark, MLflow or the network (DESIGN.md section 1, "embedded": p50 <= 50 us
per call). Two calls:

- `predict_vector(values)`: a raw input vector in signature order -> the model's raw output;
- `predict(inputs)`: what an online-store row plus a request would give (stored values and
  request parameters, e.g. `race_distance_m`, optional `race_date`) -> the on-demand
  transformations (`features.on_demand.compute_one`: the ODTs' one-row twins, equal bit for bit
  to the array code training and batch scoring run) -> the model -> the model's output
  transform (time estimator: the finish time in s).

The trees run as a shared library compiled at export time (Treelite + TL2cgen), called through
`ctypes`; an export without one (no C compiler, or the compiled trees disagreed with XGBoost)
runs XGBoost's `inplace_predict` instead. `version.json` says which and why.

Folder format (FORMAT_VERSION): `version.json` (stamp: model, version, alias, run id, export
time, library versions, predictor kind, sha256 of every file), `signature.json`,
`on_demand.json` (which inputs are on-demand transformations and what they read),
`model.ubj` (XGBoost) and, when compiled, `predictor-<digest>.so`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from athlete_platform.errors import InvalidRequest, PlatformError
from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand
from athlete_platform.features.online_view import FEATURE_DATE, race_day_after_features

FORMAT_VERSION = 1
STAMP_FILE = "version.json"
SIGNATURE_FILE = "signature.json"
ON_DEMAND_FILE = "on_demand.json"
MODEL_FILE = "model.ubj"
COMPILED, XGBOOST = "compiled", "xgboost"

#: TL2cgen's marker for a missing value: the `int` member of its input union set to -1.
_MISSING_BITS = -1


def _time_estimator_output(raw: float, computed: Mapping[str, float]) -> float:
    """Finish time (s) from the residual on log pace, exactly as batch scoring computes it."""
    return mi.predicted_time_one_s(raw, computed["base_log_pace"], computed["distance_m"])


def _race_date_default(values: Mapping[str, Any]) -> Any:
    if values.get(FEATURE_DATE) is None:
        raise InvalidRequest(
            "race_date is missing: give race_date (an ISO date such as 2025-01-12), or the stored row's "
            f"{FEATURE_DATE} (the race is then the day after it, as batch scoring predicts).",
            field="race_date",
        )
    return race_day_after_features(values)


@dataclass(frozen=True)
class EmbeddedModel:
    """What the embedded predictor needs to know about one model beyond its file."""

    input_names: tuple[str, ...]  # signature order
    output: Callable[[float, Mapping[str, float]], float]  # raw output + computed inputs -> result
    request_defaults: Mapping[str, Callable[[Mapping[str, Any]], Any]] = field(default_factory=dict)


#: Short model name (`lakehouse.tables`' RegisteredModel.name) -> its inputs and output transform.
#: A new model is one entry here.
MODELS: dict[str, EmbeddedModel] = {
    "time_estimator": EmbeddedModel(mi.MODEL_INPUTS, _time_estimator_output, {"race_date": _race_date_default}),
}


def _raw_output(raw: float, computed: Mapping[str, float]) -> float:
    return raw


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CompiledTrees:
    """The trees as a TL2cgen shared library: `predict(Entry* row, int pred_margin, float* out)`."""

    def __init__(self, library: Path, num_features: int) -> None:
        lib = ctypes.CDLL(str(library))
        if lib.get_num_feature() != num_features:
            raise PlatformError(
                f"{library} was compiled for {lib.get_num_feature()} inputs but the signature has {num_features}: "
                "the export is inconsistent. Run `athlete-platform export-model` again."
            )
        self._predict = lib.predict
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._predict.restype = None
        self._row_type = ctypes.c_float * num_features
        self._bits_type = ctypes.c_int32 * num_features

    def predict_row(self, values: Sequence[float]) -> float:
        """One row (floats, NaN = missing) -> the model's output (objective's transform applied)."""
        row = self._row_type(*values)  # float64 -> float32 rounds to nearest, as numpy's cast does
        bits = None
        for i, value in enumerate(values):
            if value != value:  # NaN: mark missing, or the C code would compare against NaN
                bits = bits or self._bits_type.from_buffer(row)
                bits[i] = _MISSING_BITS
        out = ctypes.c_float(0.0)  # the library adds to it
        self._predict(row, 0, ctypes.byref(out))
        return out.value

    def predict_rows(self, matrix: np.ndarray) -> np.ndarray:
        return np.array([self.predict_row(row) for row in np.asarray(matrix, np.float64).tolist()], np.float32)


class XGBoostTrees:
    """The fallback: XGBoost's own single-row `inplace_predict` (float32 input, as batch scoring)."""

    def __init__(self, model_file: Path) -> None:
        import xgboost as xgb

        self.booster = xgb.Booster()
        self.booster.load_model(str(model_file))
        self.booster.set_param({"nthread": 1})

    def predict_row(self, values: Sequence[float]) -> float:
        return float(self.booster.inplace_predict(np.asarray([values], np.float32), missing=np.nan)[0])

    def predict_rows(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(np.asarray(matrix, np.float32), missing=np.nan)


class EmbeddedPredictor:
    """An exported model in-process: `predict(inputs)` and `predict_vector(values)`."""

    def __init__(self, folder: Path, stamp: dict[str, Any], input_names: tuple[str, ...], trees: Any) -> None:
        self.folder = folder
        self.stamp = stamp
        self.input_names = input_names
        self.backend = stamp["predictor"]
        self._trees = trees
        spec = MODELS.get(stamp["model"])
        self._output = spec.output if spec else _raw_output
        self._defaults = dict(spec.request_defaults) if spec else {}
        self._needs = on_demand.dependencies(input_names)

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddedPredictor:
        """Load an export folder (checked whole: every file against its sha256 in `version.json`).

        Raises:
            PlatformError: the folder is missing, incomplete, corrupted or from another format or
                code version; the message says to export again.
        """
        folder = Path(folder)
        again = "Run `athlete-platform export-model --model NAME --alias ALIAS --out DIR` again."
        stamp_path = folder / STAMP_FILE
        if not stamp_path.is_file():
            what = "does not exist" if not folder.exists() else f"has no {STAMP_FILE} (not a complete export)"
            raise PlatformError(f"The embedded model folder {folder} {what}. {again}")
        try:
            stamp = json.loads(stamp_path.read_text())
            files: dict[str, str] = stamp["files"]
        except (ValueError, KeyError, TypeError):
            raise PlatformError(f"{stamp_path} is not a valid export stamp. {again}") from None
        if stamp.get("format") != FORMAT_VERSION:
            raise PlatformError(
                f"{folder} is export format {stamp.get('format')!r}; this code reads format {FORMAT_VERSION}. {again}"
            )
        for name, digest in files.items():
            path = folder / name
            if not path.is_file():
                raise PlatformError(f"{path} is missing from the export. {again}")
            if file_digest(path) != digest:
                raise PlatformError(f"{path} is corrupted (its sha256 is not the one in {STAMP_FILE}). {again}")
        signature = json.loads((folder / SIGNATURE_FILE).read_text())
        input_names = tuple(item["name"] for item in signature["inputs"])
        spec = MODELS.get(stamp["model"])
        if spec is not None and input_names != spec.input_names:
            raise PlatformError(
                f"{folder} holds {stamp['model']} v{stamp['version']}, whose inputs differ from the ones this code "
                f"builds for {stamp['model']}: retrain the model on the current features, then export it again."
            )
        if stamp["predictor"] == COMPILED:
            trees: Any = CompiledTrees(folder / stamp["library"], len(input_names))
        else:
            trees = XGBoostTrees(folder / MODEL_FILE)
        return cls(folder, stamp, input_names, trees)

    def predict_vector(self, values: Sequence[float]) -> float:
        """The model's raw output for one input vector in signature order (NaN = missing)."""
        if len(values) != len(self.input_names):
            raise InvalidRequest(
                f"expected {len(self.input_names)} values in signature order ({', '.join(self.input_names)}), "
                f"got {len(values)}",
                field="values",
            )
        return self._trees.predict_row(values)

    def predict(self, inputs: Mapping[str, Any]) -> float:
        """The model's result from stored values + passed features + request parameters.

        Raises:
            InvalidRequest: a required input is missing (`field` names it).
        """
        values = dict(inputs)
        for name, default in self._defaults.items():
            if values.get(name) is None:
                values[name] = default(values)
        try:
            computed = on_demand.compute_one(self.input_names, values)
        except on_demand.MissingInput as missing:
            raise InvalidRequest(str(missing), field=missing.name) from None
        vector = [computed[name] for name in self.input_names]
        return self._output(self._trees.predict_row(vector), computed)

    def required_inputs(self) -> dict[str, list[str]]:
        """What `predict` reads, by kind (from the on-demand transformations' declarations)."""
        needs = self._needs
        return {
            "stored_features": sorted(needs.stored),
            "passed_features": sorted(needs.passed),
            "request_parameters": sorted(needs.request),
        }
