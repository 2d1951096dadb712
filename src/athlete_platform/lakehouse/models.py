"""The MLflow model registry: tracking set-up, aliases, and reading one exact version.

An alias is resolved once (`resolve_alias`) and everything after that names the version it
returned (`models:/<name>/<version>`), so a promotion while a job runs cannot make it record
one version and use another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform.errors import PlatformError
from athlete_platform.lakehouse.relocation import relocate_mlflow_store

if TYPE_CHECKING:
    from athlete_platform.config import Settings

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class ModelVersionRef:
    """One registered version, pinned."""

    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def configure_mlflow(settings: Settings, experiment: str | None = None) -> None:
    """Point MLflow at the configured tracking URI and make sure the experiment exists
    (`experiment`, default the configured one: the time estimator's)."""
    import mlflow

    experiment = experiment or settings.mlflow.experiment
    settings.mlflow_path.mkdir(parents=True, exist_ok=True)
    if not settings.mlflow.tracking_uri:  # our own SQLite store: follow a move of the data folder
        relocate_mlflow_store(settings.mlflow_database_path, settings.mlflow_artifacts_path)
    mlflow.set_tracking_uri(settings.tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = None if settings.mlflow.tracking_uri else settings.mlflow_artifacts_path.as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)


def resolve_alias(model_name: str, alias: str) -> ModelVersionRef | None:
    """The version `alias` points at now, or None when the model or alias does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        version = MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None
    return ModelVersionRef(model_name, str(version.version))


def require_alias(model_name: str, alias: str, hint: str) -> ModelVersionRef:
    """Like `resolve_alias`, but a missing alias is an error that says what to run (`hint`)."""
    ref = resolve_alias(model_name, alias)
    if ref is None:
        raise PlatformError(f"Model {model_name} has no '{alias}' version yet. {hint}")
    return ref


def download(ref: ModelVersionRef, folder: Path) -> Path:
    """Download the version's artifacts into `folder`; returns the folder."""
    import mlflow

    mlflow.artifacts.download_artifacts(ref.uri, dst_path=str(folder))
    return folder


def model_metadata(ref: ModelVersionRef) -> dict:
    """The version's MLmodel `metadata` (empty when it has none)."""
    import mlflow

    return dict(mlflow.models.get_model_info(ref.uri).metadata or {})


def signature_input_names(ref: ModelVersionRef) -> tuple[str, ...]:
    """The input column names of the version's signature (empty without a signature)."""
    import mlflow

    signature = mlflow.models.get_model_info(ref.uri).signature
    return tuple(signature.inputs.input_names()) if signature else ()
