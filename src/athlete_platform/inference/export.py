"""`athlete-platform export-model`: a registered model version -> a folder the embedded predictor loads.

The alias is resolved once to a version (`lakehouse.models`), and everything after names that
version, so a promotion during the export cannot mix two versions. The folder is written in a
temporary sibling and renamed into place at the end, so `DIR` is always either the previous
complete export, absent for the instant between two renames, or the new complete export; a
half-written one is never loadable (and `EmbeddedPredictor.load` checks every file's sha256).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from athlete_platform.errors import PlatformError
from athlete_platform.features import on_demand
from athlete_platform.inference import embedded as fmt
from athlete_platform.inference.tree_compiler import CompileFailed, build_library
from athlete_platform.lakehouse import tables

if TYPE_CHECKING:
    from athlete_platform.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportedModel:
    """What one export wrote, for the caller to print."""

    folder: Path
    stamp: dict[str, Any]

    def summary(self) -> str:
        s = self.stamp
        how = (
            f"compiled trees ({s['compile_s']:.1f} s to compile, equal to XGBoost on {s['verification']['rows']} "
            f"rows, largest difference {s['verification']['max_abs_diff']:.2g})"
            if s["predictor"] == fmt.COMPILED
            else f"XGBoost fallback ({s['fallback_reason']})"
        )
        return f"exported {s['registered_model']} v{s['version']} ('{s['alias']}') to {self.folder}: {how}"


def registered_name(settings: Settings, model: str) -> str:
    """The registry name of a short model name (`time_estimator` -> `<catalog>.ml.time_estimator`)."""
    known = tables.registered_models()
    if model not in known:
        raise PlatformError(
            f"Unknown model {model!r}: the models this platform registers are {', '.join(sorted(known))}. "
            "Pass one of them to --model."
        )
    return tables.TableNames.from_settings(settings.catalog)(known[model])


def export_model(settings: Settings, model: str, alias: str, out: Path) -> ExportedModel:
    """Resolve `alias` once, download that version and write the embedded folder `out` atomically."""
    from mlflow import MlflowClient

    from athlete_platform.lakehouse.models import configure_mlflow, download, resolve_alias

    name = registered_name(settings, model)
    configure_mlflow(settings)
    ref = resolve_alias(name, alias)
    if ref is None:
        raise PlatformError(f"Model {name} has no '{alias}' version. {_alias_hint(name)}")
    run_id = MlflowClient().get_model_version(name, ref.version).run_id
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)  # the download's scratch folder sits beside it
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.download-", dir=out.parent) as scratch:
        artifacts = download(ref, Path(scratch) / "artifacts")
        model_file = next(artifacts.rglob("model.ubj"), None)
        if model_file is None:
            raise PlatformError(f"{name} v{ref.version} has no XGBoost model file (model.ubj); it cannot be embedded.")
        signature, examples = _signature_and_examples(artifacts)
        identity = {"model": model, "registered_model": name, "version": ref.version, "alias": alias, "run_id": run_id}
        stamp = write_folder(out, model_file, signature, examples, identity, Path(scratch))
    log.info("export-model: %s", ExportedModel(out, stamp).summary())
    return ExportedModel(out, stamp)


def _alias_hint(name: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        aliases = sorted(MlflowClient().get_registered_model(name).aliases)
    except MlflowException:
        return "The model is not registered yet: run the training pipeline first (`athlete-platform train`)."
    if not aliases:
        return "No version has an alias yet: run `athlete-platform train` (it sets 'challenger' and 'champion')."
    return f"Its aliases are {', '.join(aliases)}: pass one of them to --alias."


def _signature_and_examples(artifacts: Path) -> tuple[dict[str, Any], np.ndarray | None]:
    from mlflow.models import Model

    meta = Model.load(str(artifacts))
    if meta.signature is None:
        raise PlatformError("The model version has no signature: it cannot be embedded. Retrain it.")
    signature = {
        "inputs": meta.signature.inputs.to_dict(),
        "outputs": meta.signature.outputs.to_dict() if meta.signature.outputs else [],
    }
    example = meta.load_input_example(str(artifacts))
    names = [item["name"] for item in signature["inputs"]]
    rows = None if example is None else np.asarray(example[names], np.float64)
    return signature, rows


def write_folder(
    out: Path,
    model_file: Path,
    signature: dict[str, Any],
    examples: np.ndarray | None,
    identity: dict[str, str],
    scratch: Path,
) -> dict[str, Any]:
    """Write the export into a temporary sibling of `out`, then swap it in. Returns the stamp."""
    import tl2cgen
    import treelite
    import xgboost

    input_names = tuple(item["name"] for item in signature["inputs"])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        shutil.copyfile(model_file, staging / fmt.MODEL_FILE)
        _write_json(staging / fmt.SIGNATURE_FILE, signature)
        _write_json(staging / fmt.ON_DEMAND_FILE, odt_metadata(input_names))
        library_name = f"predictor-{fmt.file_digest(model_file)[:16]}.so"
        stamp: dict[str, Any] = {
            "format": fmt.FORMAT_VERSION,
            **identity,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": {
                "xgboost": xgboost.__version__,
                "treelite": treelite.__version__,
                "tl2cgen": tl2cgen.__version__,
            },
        }
        try:
            built = build_library(staging / fmt.MODEL_FILE, staging / library_name, input_names, examples, scratch)
        except CompileFailed as failed:
            log.warning("export-model: falling back to XGBoost: %s", failed)
            (staging / library_name).unlink(missing_ok=True)
            stamp.update(predictor=fmt.XGBOOST, fallback_reason=str(failed))
        else:
            stamp.update(
                predictor=fmt.COMPILED,
                library=library_name,
                compiler=built.compiler,
                compile_s=round(built.compile_s, 3),
                verification={
                    "rows": built.verification.rows,
                    "max_abs_diff": built.verification.max_abs_diff,
                    "tolerance": built.verification.tolerance,
                },
                fallback_reason=None,
            )
        files = sorted(p.name for p in staging.iterdir())
        stamp["files"] = {name: fmt.file_digest(staging / name) for name in files}
        _write_json(staging / fmt.STAMP_FILE, stamp)  # last: without it the folder is not an export
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return stamp


def odt_metadata(input_names: Sequence[str]) -> dict[str, Any]:
    """Which inputs are on-demand transformations and what they read, by kind."""
    needs = on_demand.dependencies(input_names)
    return {
        "on_demand_inputs": [name for name in input_names if name in on_demand.REGISTRY],
        "stored_features": sorted(needs.stored),
        "passed_features": sorted(needs.passed),
        "request_parameters": sorted(needs.request),
        "transformations": on_demand.metadata(input_names),
    }


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_in(staging: Path, out: Path) -> None:
    """`staging` becomes `out`; a previous export at `out` is removed only after the swap."""
    if out.exists() and not (out / fmt.STAMP_FILE).is_file() and any(out.iterdir()):
        raise PlatformError(
            f"{out} exists and is not an embedded model export: refusing to replace it. Pick another --out "
            "or remove the folder."
        )
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
    os.rename(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
