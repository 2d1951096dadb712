"""Models held in memory: loaded once per registry version, swapped atomically when an alias moves.

The API serves an immutable `Snapshot`: model kind -> variant alias -> `ServedModel` (name,
version, booster, signature), plus the A/B split over the aliases that exist. A request reads
the snapshot reference once and uses only it, so it finishes on the models it started with.

`ModelWatcher` re-reads the aliases every `serving.alias_poll_s` in a background thread. A
moved alias's version is downloaded, checked against the code's inputs and loaded completely
*before* a new snapshot replaces the old reference (one assignment: atomic), so no request ever
sees a half-loaded model and none fails during the switch. A registry that cannot be reached
keeps the current snapshot (logged); an alias that was deleted leaves the split at the next
poll (its weight goes to the others). Per request: no MLflow call, no model load.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from athlete_platform.errors import PlatformError
from athlete_platform.lakehouse.models import CHAMPION, ModelVersionRef, configure_mlflow, download
from athlete_platform.serving.kinds import KINDS, ModelKind
from athlete_platform.serving.variants import Variant, VariantSplit, variants_from_settings
from athlete_platform.training import intervals

if TYPE_CHECKING:
    from athlete_platform.config import Settings
    from athlete_platform.lakehouse.tables import TableNames

log = logging.getLogger("athlete_platform.serving")

#: MLflow signature types -> Open Inference Protocol datatypes.
OIP_DATATYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}


class RegistryUnreachable(PlatformError):
    """The model registry did not answer (not: the alias does not exist)."""


class ModelUnavailable(PlatformError):
    """A model the request needs is not served by this deployment: HTTP 503, with what to do."""


@dataclass(frozen=True)
class ServedModel:
    """One registry version in memory. `booster.inplace_predict` is thread-safe in XGBoost."""

    kind: ModelKind
    name: str  # the registered name, e.g. uc_athlete_data.ml.time_estimator
    version: str
    booster: Any  # xgboost.Booster
    input_names: tuple[str, ...]
    input_datatypes: tuple[str, ...]  # OIP datatypes of the signature's inputs
    output_names: tuple[str, ...]
    #: The version's P10/P90 offsets on the raw output (`training.intervals`); None without.
    interval_offsets: dict[str, intervals.Offsets] | None = None

    def raw_output(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's raw output (float32) for a float64 [rows, inputs] matrix, cast to
        float32 and with NaN as missing, exactly as batch scoring calls it."""
        return self.booster.inplace_predict(np.asarray(matrix, np.float64).astype(np.float32), missing=np.nan)

    def predict(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw output, prediction) for a float64 [rows, inputs] matrix in signature order."""
        matrix = np.asarray(matrix, np.float64)
        raw = self.raw_output(matrix)
        columns = {name: matrix[:, i] for i, name in enumerate(self.input_names)}
        return raw, np.asarray(self.kind.output(raw, columns), float)

    def interval(self, raw: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(P10, P90) around the predictions of `raw` (from `predict`), as batch scoring computes
        them; None when the version has no interval."""
        if self.interval_offsets is None or "distance_m" not in self.input_names:
            return None
        matrix = np.asarray(matrix, np.float64)
        columns = {name: matrix[:, i] for i, name in enumerate(self.input_names)}
        groups = intervals.distance_groups(columns["distance_m"])
        low, high = intervals.interval(raw, groups, self.interval_offsets)
        return np.asarray(self.kind.output(low, columns), float), np.asarray(self.kind.output(high, columns), float)


@dataclass(frozen=True)
class Snapshot:
    """What the API serves at one moment (never mutated: replaced whole)."""

    models: Mapping[str, Mapping[str, ServedModel]]  # kind key -> alias -> model
    splits: Mapping[str, VariantSplit]  # kind key -> A/B split over the aliases present
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def for_athlete(self, kind: str, athlete_id: str) -> tuple[str, ServedModel]:
        """(variant alias, model) serving `athlete_id` for model `kind`."""
        split = self._split(kind)
        alias = split.assign(athlete_id)
        return alias, self.models[kind][alias]

    def primary(self, kind: str) -> tuple[str, ServedModel]:
        split = self._split(kind)
        return split.primary, self.models[kind][split.primary]

    def version(self, kind: str, version: str) -> tuple[str, ServedModel] | None:
        """(alias, model) of a loaded version of `kind`, or None."""
        for alias, model in self.models.get(kind, {}).items():
            if model.version == version:
                return alias, model
        return None

    def versions(self, kind: str) -> list[str]:
        return sorted({m.version for m in self.models.get(kind, {}).values()}, key=_version_key)

    def _split(self, kind: str) -> VariantSplit:
        split = self.splits.get(kind)
        if split is None:
            raise ModelUnavailable(
                f"The {kind} model is not served by this deployment: no version of it is loaded. Train it "
                f"(`athlete-platform {'train-live' if kind == 'live_pace_coach' else 'train'}`): a running API "
                "loads a new version at its next alias poll when the model is listed in serving.models "
                "(otherwise list it there and restart `athlete-platform serve`)."
            )
        return split


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


class RegistryLoader:
    """Resolves aliases and loads versions from the MLflow registry (each version once)."""

    def __init__(self, settings: Settings, names: TableNames) -> None:
        configure_mlflow(settings)
        self.settings = settings
        self.names = names
        self.variants: tuple[Variant, ...] = variants_from_settings(settings.serving.variants)
        self.kinds: tuple[ModelKind, ...] = tuple(KINDS[key] for key in settings.serving.models)
        self._loaded: dict[tuple[str, str], ServedModel] = {}  # (name, version) -> model

    def _aliases(self) -> str:
        return ", ".join(v.alias for v in self.variants)

    def model_name(self, kind: ModelKind) -> str:
        return self.names(kind.registered)

    def resolve(self, model_name: str, alias: str) -> str | None:
        """The version `alias` names now; None when the model or alias does not exist.

        Raises `RegistryUnreachable` for any other failure (the caller keeps what it serves)."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise RegistryUnreachable(f"The model registry at {self.settings.tracking_uri} failed: {exc}") from None
        except Exception as exc:  # connection errors of a remote tracking server
            raise RegistryUnreachable(f"The model registry at {self.settings.tracking_uri} failed: {exc}") from None

    def load(self, kind: ModelKind, ref: ModelVersionRef) -> ServedModel:
        """Download, check and load one version (cached: a version is loaded once)."""
        cached = self._loaded.get((ref.name, ref.version))
        if cached is not None:
            return cached
        import mlflow
        import xgboost as xgb

        folder = Path(tempfile.mkdtemp(prefix="athlete-platform-serving-"))
        try:
            download(ref, folder)
            model_file = next(folder.rglob("model.ubj"), None) or next(folder.rglob("model.*"), None)
            if model_file is None:
                raise PlatformError(f"Version {ref.version} of {ref.name} has no XGBoost model file.")
            info = mlflow.models.get_model_info(ref.uri)
            signature = info.signature
            offsets = intervals.from_metadata((info.metadata or {}).get(intervals.METADATA_KEY))
            booster = xgb.Booster()
            booster.load_model(str(model_file))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        booster.set_param({"nthread": 1})  # requests run in parallel threads already
        inputs = list(signature.inputs.inputs) if signature else []
        names = tuple(spec.name for spec in inputs)
        if names != kind.inputs:
            raise PlatformError(
                f"Version {ref.version} of {ref.name} expects inputs {list(names)} but this code builds "
                f"{list(kind.inputs)} (or in another order). Retrain the model on the current features "
                "(`athlete-platform train`) or move the alias back to a version built for them."
            )
        datatypes = tuple(OIP_DATATYPES.get(getattr(spec.type, "name", str(spec.type)), "FP64") for spec in inputs)
        outputs = signature.outputs.inputs if signature and signature.outputs else []
        output_names = tuple(getattr(o, "name", None) or f"output-{i}" for i, o in enumerate(outputs)) or ("output-0",)
        model = ServedModel(kind, ref.name, ref.version, booster, names, datatypes, output_names, offsets)
        self._loaded[(ref.name, ref.version)] = model
        return model

    def snapshot(self, previous: Snapshot | None = None) -> Snapshot:
        """Resolve every (model, variant alias) and load what moved; the new snapshot is complete
        before it is returned. Without `previous` (start-up) a model with no alias at all is an
        error naming what to run; later, such a model keeps what `previous` served."""
        models: dict[str, dict[str, ServedModel]] = {}
        splits: dict[str, VariantSplit] = {}
        for kind in self.kinds:
            name = self.model_name(kind)
            found: dict[str, ServedModel] = {}
            for variant in self.variants:
                version = self.resolve(name, variant.alias)
                if version is None:
                    continue
                old = (previous.models.get(kind.key, {}) if previous else {}).get(variant.alias)
                if old is not None and old.version == version:
                    found[variant.alias] = old
                else:
                    found[variant.alias] = self.load(kind, ModelVersionRef(name, version))
            try:
                split = VariantSplit.of(self.variants, frozenset(found))
            except ValueError as exc:
                if not kind.required and not found and (previous is None or kind.key not in previous.splits):
                    log.info("serving: %s has no version behind %s yet: not served", name, self._aliases())
                    continue
                if previous is not None and kind.key in previous.splits:
                    log.warning("serving: %s: %s; keeping the models served so far", name, exc)
                    models[kind.key], splits[kind.key] = dict(previous.models[kind.key]), previous.splits[kind.key]
                    continue
                raise PlatformError(
                    f"Nothing to serve for {name}: {exc}. Run `athlete-platform train` (it registers a version "
                    f"and sets '{CHAMPION}' when it passes the gate), or list an existing alias in serving.variants."
                ) from None
            if split.skipped:
                log.warning(
                    "serving: %s has no alias %s: those variants are skipped and their weight shared (%s)",
                    name,
                    ", ".join(split.skipped),
                    ", ".join(f"{a} {s:.0%}" for a, s in split.shares.items()),
                )
            models[kind.key], splits[kind.key] = found, split
        return Snapshot(models, splits)


class ModelWatcher:
    """Holds the current snapshot and refreshes it from the registry in a daemon thread."""

    def __init__(self, loader: RegistryLoader, initial: Snapshot, poll_s: float) -> None:
        self.loader = loader
        self.poll_s = poll_s
        self._snapshot = initial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.swaps = 0
        self.last_error: str | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot  # one attribute read: a request sees one whole snapshot

    def poll_once(self) -> bool:
        """Re-read the aliases; swap in a new snapshot when any moved. Returns whether it swapped."""
        current = self._snapshot
        try:
            fresh = self.loader.snapshot(current)
        except Exception as exc:  # registry down, a broken version: keep serving what works
            self.last_error = str(exc)
            log.warning("serving: alias poll failed, keeping the current models: %s", exc)
            return False
        finally:
            self.polls += 1
        self.last_error = None
        if _served_versions(fresh) == _served_versions(current):
            return False
        self._snapshot = fresh  # atomic: the new models were loaded completely above
        self.swaps += 1
        log.info("serving: models now %s", _served_versions(fresh))
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alias-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.poll_s, 1.0) + 30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll_once()


def _served_versions(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    return {kind: {alias: m.version for alias, m in by_alias.items()} for kind, by_alias in snapshot.models.items()}


def describe(snapshot: Snapshot) -> list[dict[str, Any]]:
    """What /status shows per model: aliases, versions and effective A/B shares."""
    out = []
    for kind, by_alias in snapshot.models.items():
        split = snapshot.splits[kind]
        shares = split.shares
        out.append(
            {
                "model": kind,
                "name": next(iter(by_alias.values())).name,
                "variants": [
                    {"alias": alias, "version": m.version, "share": round(shares.get(alias, 0.0), 6)}
                    for alias, m in by_alias.items()
                ],
                "skipped_variants": list(split.skipped),
            }
        )
    return out


def served_names(snapshot: Snapshot) -> Sequence[str]:
    return list(snapshot.models)
