"""Every setting, declared once, and read in this one place: the environment, else params.yaml, else here.

Each field of :class:`Settings` is a setting: its name (the field's, and upper-cased
its environment variable), its kind (which parses and checks it), its default, the
params.yaml key it may come from, whether a run may override it as a DAG Param, and
one line of what it does. From these fields come the steps' settings
(:func:`load_settings`), the DAG's Params and what each step container is passed
(orchestration/dags/ct_tasks), ``.env.example`` and README's settings table
(``make generate``). Secrets are declared apart (:data:`SECRETS`): `make up`
generates them into ``.env``.

A value is read in this order: the environment variable, when set and not blank
(compose passes an unset one as ``NAME=``); then its params.yaml key; then its
default here. params.yaml is the one set of modelling defaults that the local
pipeline, the step images and the DAG share: DVC reads it (each stage declares the
keys it reads), and a step reads it from ``CT_PARAMS`` (its content, as the DAG
passes the stack's), else the file ``CT_PARAMS_FILE`` names, else the repository's.
A malformed value fails at start with a message that names the variable, rather
than deep inside a step (Twelve-Factor: configuration from the environment, read in
one place; backing services attached by URL).

Standard library and PyYAML only: the DAGs import this module too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline_steps.errors import SettingsError

# Every metric evaluate logs. Binary tasks measure precision, recall and f1 on the
# positive class (POSITIVE_CLASS); multiclass tasks average them over classes (macro).
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc")
# The ones the quality gate can compare. The default, f1, is what matters when the
# positive class is the rare one (churn, fraud, a diagnosis): accuracy looks good on
# an imbalanced table by never predicting it. f1_macro or balanced_accuracy weigh
# every class the same when no one class is "the" positive one.
GATE_METRICS = ("f1", "f1_macro", "balanced_accuracy", "roc_auc", "accuracy")
# What text in a number column does: it refuses the table, or becomes a missing value (counted).
INVALID_NUMBERS = ("refuse", "missing")
# Tables to score are published like training data, as the dataset "<DATASET_NAME>_to_score".
SCORING_SUFFIX = "_to_score"

PARAMS_FILE_VARIABLE = "CT_PARAMS_FILE"
# params.yaml's content (JSON or YAML), as the DAG passes it; wins over the file.
PARAMS_VARIABLE = "CT_PARAMS"
DEFAULT_PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"

# Who reads a setting, and so what the DAG passes to each step container:
# STEP: the steps; a user sets it (.env, params.yaml) and the DAG passes it on.
# SERVICE: the steps; the stack sets it (a service's URL, a login) and the DAG passes it on,
#   a secret one only at run time (DockerOperator's private environment).
# OWN: a step sets it for itself (its image's commit, its image) or one tool reads it; never passed.
# STACK: Airflow and the stack's scripts.
# SERVER: the model server (pipeline_steps/serving); the DAG passes nothing of it.
STEP, SERVICE, OWN, STACK, SERVER = "step", "service", "own", "stack", "server"


class Kind:
    """What values a setting takes: parses its text (environment) and checks its params.yaml value."""

    json_type: str | list[str] = "string"  # its DAG Param's JSON schema type

    def parse(self, raw: str, name: str) -> Any:  # pylint: disable=unused-argument  # any text is one
        """The value of the text ``raw`` (not blank); an error naming the setting ``name`` if none."""
        return raw

    def from_params(self, value: Any, name: str) -> Any:
        """The value of what params.yaml holds."""
        return self.parse(str(value), name)

    def text(self, value: Any) -> str:
        """The value as an environment variable holds it."""
        return "" if value is None else str(value)

    def schema(self) -> dict[str, Any]:
        """Its DAG Param's JSON schema (besides the default)."""
        return {"type": self.json_type}


class Text(Kind):
    """Any text."""


class Url(Kind):
    """An http(s) URL."""

    def parse(self, raw: str, name: str) -> str:
        if not raw.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must start with http:// or https://, got {raw!r}")
        return raw


class Bucket(Kind):
    """An S3 bucket name."""

    def parse(self, raw: str, name: str) -> str:
        if not 3 <= len(raw) <= 63 or raw != raw.lower() or "/" in raw:
            raise SettingsError(
                f"{name} must be an S3 bucket name (3-63 lowercase characters, no '/'), got {raw!r}")
        return raw


class Character(Kind):
    """One character (``\\t`` for a tab)."""

    def parse(self, raw: str, name: str) -> str:
        value = "\t" if raw == "\\t" else raw
        if len(value) != 1:
            raise SettingsError(f"{name} must be a single character, got {value!r}")
        return value


@dataclass(frozen=True)
class Number(Kind):
    """A number (``whole``: an integer), at least ``minimum``."""

    minimum: float | None = None
    whole: bool = False

    @property
    def json_type(self) -> str:  # type: ignore[override]
        """integer or number."""
        return "integer" if self.whole else "number"

    def parse(self, raw: str, name: str) -> float:
        try:
            value = int(raw) if self.whole else float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {'an integer' if self.whole else 'a number'}, "
                                f"got {raw!r}") from None
        if self.minimum is not None and value < self.minimum:
            raise SettingsError(f"{name} must be at least {self.minimum:g}, got {raw!r}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": self.json_type, **({"minimum": self.minimum} if self.minimum is not None else {})}


@dataclass(frozen=True)
class Integer(Number):
    """A whole number, at least ``minimum``."""

    whole: bool = True


@dataclass(frozen=True)
class Fraction(Kind):
    """A number between 0 and 1 (``exclusive``: strictly); ``optional``: or nothing."""

    exclusive: bool = False
    optional: bool = False

    @property
    def json_type(self) -> str | list[str]:  # type: ignore[override]
        """A number, or also null when it may be unset."""
        return ["null", "number"] if self.optional else "number"

    def parse(self, raw: str, name: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not (0 < value < 1 if self.exclusive else 0 <= value <= 1):
            bounds = "strictly between 0 and 1" if self.exclusive else "between 0 and 1"
            raise SettingsError(f"{name} must be {bounds}, got {raw!r}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": self.json_type, "minimum": 0, "maximum": 1}


class Boolean(Kind):
    """true or false (also 1/0, yes/no, in any case)."""

    json_type = "boolean"

    def parse(self, raw: str, name: str) -> bool:
        lowered = raw.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingsError(f"{name} must be true or false, got {lowered!r}")
        return lowered in ("true", "1", "yes")

    def text(self, value: Any) -> str:
        return str(bool(value)).lower()


@dataclass(frozen=True)
class Choice(Kind):
    """One of a few words."""

    choices: tuple[str, ...] = ()

    def parse(self, raw: str, name: str) -> str:
        if raw not in self.choices:
            raise SettingsError(f"{name} must be one of {', '.join(self.choices)}, got {raw!r}")
        return raw

    def schema(self) -> dict[str, Any]:
        return {"type": self.json_type, "enum": list(self.choices)}


class Names(Kind):
    """Comma-separated names (a list in params.yaml)."""

    def parse(self, raw: str, name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def from_params(self, value: Any, name: str) -> tuple[str, ...]:
        return tuple(map(str, value)) if isinstance(value, list) else self.parse(str(value), name)

    def text(self, value: Any) -> str:
        return ",".join(value or ())


class JsonObject(Kind):
    """A JSON object; set in the environment, it is merged over the params.yaml mapping."""

    json_type = "object"

    def parse(self, raw: str, name: str) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{name} must be a JSON object: {exc.msg}") from None
        if not isinstance(value, dict):
            raise SettingsError(f"{name} must be a JSON object, e.g. '{{\"max_depth\": 6}}'")
        return value

    def from_params(self, value: Any, name: str) -> dict[str, Any]:
        return dict(value)

    def text(self, value: Any) -> str:
        return json.dumps(value or {}, sort_keys=True)


@dataclass(frozen=True)
class Spec:
    """How one setting is declared (see :func:`setting`)."""

    kind: Kind
    doc: str
    key: str | None
    param: str | None
    scope: str
    required: bool
    secret: bool
    wired: bool

    @property
    def user_set(self) -> bool:
        """Whether a user sets it (.env.example and README list it), rather than the stack or a step."""
        return self.scope in (STEP, STACK, SERVER) and not self.wired and not self.secret


def setting(  # pylint: disable=too-many-arguments  # each is one part of a setting's declaration
        kind: Kind, doc: str, *, default: Any = None, key: str | None = None, param: str | None = None,
        scope: str = STEP, required: bool = False, secret: bool = False, wired: bool = False) -> Any:
    """A field of :class:`Settings`: the declaration of one setting.

    ``key``: its params.yaml key (dotted); ``param``: the name of the DAG Param a run may
    set it with; ``scope``: who reads it (STEP, SERVICE, OWN, STACK, SERVER); ``required``: there
    is no default here (params.yaml must have it); ``secret``: its value is never shown;
    ``wired``: the stack sets it (a STACK setting no user needs to set).
    """
    spec = Spec(kind, doc, key, param, scope, required, secret, wired)
    # A field of the dataclass it is assigned in (Settings), returned rather than written there.
    # pylint: disable=invalid-field-call
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"setting": spec}, repr=not secret)
    return field(default=default, metadata={"setting": spec}, repr=not secret)


@dataclass(frozen=True)
class S3Settings:
    """Where the S3 service is and how to sign requests to it (a view of :class:`Settings`)."""

    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    region: str
    data_bucket: str
    artifact_bucket: str
    runs_bucket: str

    def require_credentials(self) -> None:
        """Fail early, naming each missing variable, before any S3 call is made."""
        missing = [name for name, value in (("AWS_ACCESS_KEY_ID", self.access_key_id),
                                            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key)) if not value]
        if missing:
            raise SettingsError(f"{', '.join(missing)} must be set to use S3")

    @property
    def dvc_remote_url(self) -> str:
        """The DVC remote: a prefix in the data bucket."""
        return f"s3://{self.data_bucket}/dvcstore"


@dataclass(frozen=True)
class AirflowApiSettings:
    """Where Airflow's REST API is, to announce a published data version as an Asset event."""

    url: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Settings:  # pylint: disable=too-many-instance-attributes  # the declaration of every setting
    """The whole configuration: each field declares one setting (see the module's docstring)."""

    # ---- where the data is
    dataset_name: str = setting(Text(), "the dataset: a built-in table (breast_cancer, penguins) or a "
                                "published one", key="data.name", required=True)
    target_column: str = setting(Text(), "the class column: text, booleans or whole numbers",
                                 key="data.target", required=True)
    drop_columns: tuple[str, ...] = setting(Names(), "comma-separated columns the model must never read "
                                            "(ids, free text, leaks)", default=(), key="data.drop_columns")
    positive_class: str | None = setting(Text(), "binary text labels: the class f1, precision and recall "
                                         "are about (e.g. Yes, >50K)", key="data.positive_class")
    drop_duplicate_rows: bool = setting(Boolean(), "drop exact repeats of a row (only where a repeated row "
                                        "is an error: it is another observation otherwise)", default=False,
                                        key="data.drop_duplicate_rows")
    invalid_numbers: str = setting(Choice(INVALID_NUMBERS), "text in a number column refuses the "
                                   "table, or (missing) becomes a missing value, counted", default="refuse",
                                   key="data.invalid_numbers")
    csv_delimiter: str = setting(Character(), "the CSV files' delimiter (\\t for a tab)", default=",")
    # ---- how the model is made
    seed: int = setting(Integer(), "the split, the model and the tuning", key="seed", required=True)
    test_size: float = setting(Fraction(exclusive=True), "share of rows held out for evaluation",
                               key="prepare.test_size", required=True)
    xgb_params: dict[str, Any] = setting(JsonObject(), "XGBoost parameters (JSON), merged over params.yaml's "
                                         "train.xgb", default={}, key="train.xgb", param="xgb_params")
    tune_enabled: bool = setting(Boolean(), "tune XGBoost's parameters with Optuna before training",
                                 key="tune.enabled", param="tune", required=True)
    tune_trials: int = setting(Integer(1), "at most this many tuning trials...", key="tune.trials",
                               required=True)
    tune_timeout_seconds: int = setting(Integer(1), "...and at most this long, whichever ends first",
                                        key="tune.timeout_seconds", required=True)
    tune_folds: int = setting(Integer(2), "cross-validation folds of a trial, on the train split only",
                              key="tune.folds", required=True)
    # ---- the quality gate and the drift check
    quality_metric: str = setting(Choice(GATE_METRICS), "the metric the quality gate compares",
                                  key="gate.metric", param="metric", required=True)
    quality_threshold: float = setting(Fraction(), "the metric must beat this to register",
                                       key="gate.threshold", param="threshold", required=True)
    quality_tolerance: float = setting(Fraction(), "how far below the Staging model (on the same test rows) "
                                       "the metric may fall and still register", key="gate.tolerance",
                                       param="tolerance", required=True)
    max_drift_share: float | None = setting(Fraction(optional=True), "stop a run (nothing trained) when more "
                                            "than this share of the columns drifted; unset: drift only "
                                            "informs", param="max_drift_share")
    # ---- where things are kept
    model_name: str = setting(Text(), "the registered model's name", default="ct-xgboost")
    mlflow_experiment_name: str = setting(Text(), "the MLflow experiment of the training runs",
                                          default="ct-pipeline")
    s3_data_bucket: str = setting(Bucket(), "the DVC remote (s3://<bucket>/dvcstore) and the published "
                                  "data pointers", default="dvc-data")
    s3_artifact_bucket: str = setting(Bucket(), "MLflow's artifacts", default="mlflow-artifacts")
    s3_runs_bucket: str = setting(Bucket(), "each run's outputs, and the predictions",
                                  default="pipeline-runs")
    s3_prediction_log_bucket: str = setting(Bucket(), "every prediction, the model server's and batch "
                                            "scoring's, as Parquet (what monitoring reads)",
                                            default="prediction-log")
    aws_default_region: str = setting(Text(), "the region S3 requests are signed for", default="us-east-1")
    # ---- what the stack sets for the steps, and what a step sets for itself
    s3_endpoint_url: str | None = setting(Url(), "the S3 service (the stack: http://s3:9000)", scope=SERVICE)
    mlflow_tracking_uri: str = setting(Text(), "the MLflow server (the stack: http://mlflow:5000); "
                                       "locally a SQLite file", default="sqlite:///mlflow.db", scope=SERVICE)
    aws_access_key_id: str | None = setting(Text(), "the S3 key the step signs with", scope=SERVICE,
                                            secret=True)
    aws_secret_access_key: str | None = setting(Text(), "the S3 secret the step signs with", scope=SERVICE,
                                                secret=True)
    mlflow_tracking_username: str | None = setting(Text(), "MLflow's login (basic-auth app)", scope=SERVICE)
    mlflow_tracking_password: str | None = setting(Text(), "MLflow's password", scope=SERVICE, secret=True)
    airflow_api_url: str | None = setting(Url(), "Airflow's REST API, to announce a published data version",
                                          scope=OWN)
    airflow_api_username: str | None = setting(Text(), "the Airflow user that announces it", scope=OWN)
    airflow_api_password: str | None = setting(Text(), "its password", scope=OWN, secret=True)
    git_commit: str | None = setting(Text(), "the commit a step image was built from", scope=OWN)
    step_image: str | None = setting(Text(), "the image (with its digest) a step runs in", scope=OWN)
    # ---- the stack: Airflow and its scripts
    ct_auto_approve: bool = setting(Boolean(), "promote every registered model to Production without asking "
                                    "a person (an unattended stack)", default=False, param="auto_approve",
                                    scope=STACK)
    ct_approval_timeout_hours: float = setting(Number(0), "an approval request unanswered this long counts "
                                               "as Reject (it holds the DAG's next run)", default=24.0,
                                               scope=STACK)
    ct_scheduled_wait_minutes: int = setting(Integer(0), "scheduled runs wait this long for new data before "
                                             "skipping", default=0, scope=STACK)
    ct_wait_poke_seconds: int = setting(Integer(1), "while waiting for data: one check every this many "
                                        "seconds", default=60, scope=STACK)
    ct_step_retries: int = setting(Integer(0), "retries of a step that failed transiently", default=2,
                                   scope=STACK)
    ct_step_retry_delay_seconds: int = setting(Integer(0), "first retry of a step that failed transiently "
                                               "(then backoff)", default=20, scope=STACK)
    ct_step_timeout_minutes: int = setting(Integer(1), "a step running longer fails", default=30, scope=STACK)
    ct_max_active_runs: int = setting(Integer(1), "runs of one DAG at a time (one: a run's gate compares "
                                      "with what the run before registered)", default=1, scope=STACK)
    ct_heavy_queue: str = setting(Text(), "e.g. heavy: tune, train, evaluate and predict go to this Celery "
                                  "queue (unset: all in default)", default="", scope=STACK)
    ct_notify_webhook: str = setting(Text(), "URL POSTed JSON (text, dag_id, run_id, task_id, reason, url) "
                                     "when a task fails or the gate stops a run; a receiver on the Docker "
                                     "host is http://host.docker.internal:<port>/...", default="",
                                     scope=STACK)
    ct_run_deadline_minutes: int = setting(Integer(1), "a training run not finished this long after it was "
                                           "queued notifies, with its link, while it still runs (Airflow's "
                                           "Deadline Alert)", default=120, scope=STACK)
    ct_monitor_deadline_minutes: int = setting(Integer(1), "...and a monitor run not finished this long "
                                               "after it was queued", default=30, scope=STACK)
    ct_approval_remind_minutes: int = setting(Integer(1), "a training run still going this long before "
                                              "CT_APPROVAL_TIMEOUT_HOURS after it was queued (its promotion "
                                              "waits for a person) notifies, with its link", default=60,
                                              scope=STACK)
    ct_monitor_schedule: str = setting(Text(), "when monitor_production runs by itself (a cron expression or "
                                       "preset); none: only on demand (make monitor)", default="@hourly",
                                       scope=STACK)
    ct_step_extra_hosts: str = setting(Text(), "name:address,... for every step container (make worker sets "
                                       "s3 and mlflow)", default="", scope=STACK)
    ct_image_prefix: str = setting(Text(), "the step images' name prefix (a registry's path, for workers on "
                                   "other hosts)", default="ct-", scope=STACK)
    ct_image_tag: str = setting(Text(), "the step images' tag: the commit make up deployed", default="latest",
                                scope=STACK, wired=True)
    ct_docker_url: str = setting(Text(), "the Docker API the step containers are started through",
                                 default="unix://var/run/docker.sock", scope=STACK, wired=True)
    ct_docker_network: str = setting(Text(), "the network the step containers join", default="mlops",
                                     scope=STACK, wired=True)
    ct_mlflow_ui_url: str = setting(Text(), "where a person's browser reaches the MLflow UI",
                                    default="http://localhost:5000", scope=STACK, wired=True)

    # ---- the model server (pipeline_steps/serving)
    serve_processes: int = setting(Integer(1), "the model server's processes; each loads the Production "
                                   "model and follows its alias on its own", default=2, scope=SERVER)
    serve_alias_check_seconds: float = setting(Number(0.5), "the server asks MLflow where the production "
                                               "alias points this often (MLflow's webhook says it at once)",
                                               default=5.0, scope=SERVER)
    serve_max_request_bytes: int = setting(Integer(1024), "a prediction request's body may be this large "
                                           "(larger: 413; score big tables with make score)",
                                           default=1_000_000, scope=SERVER)
    serve_log_flush_seconds: float = setting(Number(0.1), "answered predictions reach the prediction log "
                                             "within this long...", default=5.0, scope=SERVER)
    serve_log_flush_rows: int = setting(Integer(1), "...or as soon as this many are waiting",
                                        default=1000, scope=SERVER)
    serve_api_key: str | None = setting(Text(), "the key a prediction request sends as a bearer token",
                                        scope=SERVER, secret=True)
    serve_webhook_secret: str | None = setting(Text(), "signs MLflow's webhook deliveries to the server",
                                               scope=SERVER, secret=True)
    serve_webhook_url: str = setting(Url(), "where MLflow's registry webhook reaches the server",
                                     default="http://model-server:8000/webhooks/mlflow", scope=SERVER,
                                     wired=True)

    # ---- production monitoring (pipeline_steps/monitoring; the monitor_production DAG)
    monitor_min_rows: int = setting(Integer(1), "a monitor window with fewer predictions than this measures "
                                    "nothing (they count in the next window)", default=50)
    monitor_max_drift_share: float = setting(Fraction(), "a window where more than this share of the "
                                             "columns drifted from the Production model's training data "
                                             "notifies", default=0.5)
    monitor_min_live_metric: float | None = setting(Fraction(optional=True), "a window whose live gate "
                                                    "metric (on labelled rows) is below this notifies and "
                                                    "publishes those rows; unset: QUALITY_THRESHOLD")
    monitor_min_labelled_rows: int = setting(Integer(1), "the live metric judges a window only from this "
                                             "many labelled rows", default=30)

    @property
    def s3(self) -> S3Settings:
        """The S3 service's settings, for :class:`pipeline_steps.services.storage.Storage`."""
        return S3Settings(self.s3_endpoint_url, self.aws_access_key_id, self.aws_secret_access_key,
                          self.aws_default_region, self.s3_data_bucket, self.s3_artifact_bucket,
                          self.s3_runs_bucket)

    @property
    def buckets(self) -> list[str]:
        """Every bucket the stack uses (each Bucket setting's), as the init job creates them."""
        return [getattr(self, item.attribute) for item in declared() if isinstance(item.spec.kind, Bucket)]

    @property
    def airflow_api(self) -> AirflowApiSettings | None:
        """Airflow's REST API with its login, when all three are set (load_settings checks that)."""
        if not self.airflow_api_url:
            return None
        return AirflowApiSettings(self.airflow_api_url.rstrip("/"), str(self.airflow_api_username),
                                  str(self.airflow_api_password))

    @property
    def mlflow_login(self) -> tuple[str, str] | None:
        """MLflow's basic-auth login (user, password); MLflow's client reads the same variables."""
        if self.mlflow_tracking_username and self.mlflow_tracking_password:
            return self.mlflow_tracking_username, self.mlflow_tracking_password
        return None

    def pointer_uri(self, dataset_name: str) -> str:
        """Where the newest published version of a dataset name is announced."""
        return f"s3://{self.s3_data_bucket}/published/{dataset_name}.json"

    @property
    def published_pointer_uri(self) -> str:
        """Where the newest published data version of the dataset is announced."""
        return self.pointer_uri(self.dataset_name)

    @property
    def scoring_pointer_uri(self) -> str:
        """Where the newest table to score is announced (batch_scoring's Asset)."""
        return self.pointer_uri(self.scoring_dataset_name)

    @property
    def scoring_dataset_name(self) -> str:
        """The dataset name tables to score are published under (batch_scoring's Asset)."""
        return f"{self.dataset_name}{SCORING_SUFFIX}"


@dataclass(frozen=True)
class Declared:
    """One declared setting: its field, its environment variable and its declaration."""

    attribute: str
    name: str
    spec: Spec
    default: Any


def declared() -> list[Declared]:
    """Every setting, in the order of :class:`Settings`' fields."""
    found = []
    for item in fields(Settings):
        default = item.default_factory() if callable(item.default_factory) else item.default
        found.append(Declared(item.name, item.name.upper(), item.metadata["setting"], default))
    return found


@dataclass(frozen=True)
class Secret:
    """A secret `make up` generates into .env: its name, what it is, and how it is made."""

    name: str
    doc: str
    make: str  # hex:<bytes> (token_hex), key:<bytes> ("ct" + token_hex: an S3 access key), fernet


SECRETS: tuple[Secret, ...] = (
    Secret("POSTGRES_PASSWORD", "Postgres superuser", "hex:16"),
    Secret("AIRFLOW_DB_PASSWORD", "owner of the airflow database", "hex:16"),
    Secret("MLFLOW_DB_PASSWORD", "owner of the mlflow database", "hex:16"),
    Secret("S3_ACCESS_KEY", "S3 admin access key (MinIO root user, SeaweedFS identity)", "key:8"),
    Secret("S3_SECRET_KEY", "S3 admin secret key (buckets, the first dataset, the tests)", "hex:20"),
    Secret("AIRFLOW_ADMIN_PASSWORD", "password of the Airflow UI/API user admin", "hex:12"),
    Secret("AIRFLOW_PUBLISHER_PASSWORD", "Airflow API user publisher (role op): make publish posts asset "
           "events with it", "hex:12"),
    Secret("AIRFLOW_FERNET_KEY", "encrypts Airflow connections and variables", "fernet"),
    Secret("AIRFLOW_JWT_SECRET", "signs Airflow API and task tokens (shared by all Airflow services)",
           "hex:32"),
    Secret("AIRFLOW_API_SECRET_KEY", "Airflow API server session secret", "hex:32"),
    Secret("MLFLOW_ADMIN_PASSWORD", "password of the MLflow UI/API user admin (steps and Airflow log in "
           "with it)", "hex:12"),
    Secret("MLFLOW_SECRET_KEY", "signs the MLflow UI's CSRF tokens (the same for every server worker)",
           "hex:32"),
    Secret("MLFLOW_WEBHOOK_KEY", "encrypts the secrets of MLflow's registry webhooks (one key for every "
           "server worker and restart: without it each makes its own and cannot read the others')",
           "fernet"),
    Secret("S3_PIPELINE_ACCESS_KEY", "the steps' S3 identity: read the data, write runs/ and predictions/",
           "key:8"),
    Secret("S3_PIPELINE_SECRET_KEY", "its secret", "hex:20"),
    Secret("S3_PUBLISHER_ACCESS_KEY", "make publish / make score: write the data (the DVC remote)", "key:8"),
    Secret("S3_PUBLISHER_SECRET_KEY", "its secret", "hex:20"),
    Secret("S3_MLFLOW_ACCESS_KEY", "the MLflow server: its artifacts bucket only", "key:8"),
    Secret("S3_MLFLOW_SECRET_KEY", "its secret", "hex:20"),
    Secret("SERVE_API_KEY", "the model server's key: prediction requests send it as a bearer token",
           "hex:24"),
    Secret("SERVE_WEBHOOK_SECRET", "signs MLflow's registry webhook deliveries to the model server",
           "hex:32"),
    Secret("MLFLOW_SERVER_PASSWORD", "MLflow user model-server (the model server's login): it reads, and "
           "changes nothing that exists", "hex:12"),
    Secret("S3_SERVER_ACCESS_KEY", "the model server's S3 identity: write the prediction log, nothing else",
           "key:8"),
    Secret("S3_SERVER_SECRET_KEY", "its secret", "hex:20"),
    Secret("REDIS_PASSWORD", "the Celery broker's password (make up EXECUTOR=celery only)", "hex:16"),
)


# What compose and the stack's scripts read besides the settings above: (name, default, what it does).
COMPOSE_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("S3_BACKEND", "minio", "or seaweedfs; make up falls back to seaweedfs where MinIO cannot be pulled"),
    ("EXECUTOR", "local", "or celery (CeleryExecutor, with WORKERS workers); make up remembers it here"),
    ("POSTGRES_IMAGE", "postgres:16-bookworm", "falls back to ct-postgres where it cannot be pulled"),
    ("REDIS_IMAGE", "redis:7-bookworm", "falls back to ct-redis (Debian's redis-server) where it cannot be "
     "pulled"),
    ("AIRFLOW_PORT", "8080", "the Airflow UI and API on localhost"),
    ("MLFLOW_PORT", "5000", "the MLflow UI and API on localhost"),
    ("S3_PORT", "9000", "the S3 API on localhost"),
    ("S3_CONSOLE_PORT", "9001", "MinIO's console only"),
    ("SERVE_PORT", "8000", "the model server (its API page at /docs) on localhost"),
    ("FLOWER_PORT", "5555", "Flower, the Celery workers' view (user admin, AIRFLOW_ADMIN_PASSWORD)"),
    ("CT_WORKER_QUEUES", "", "the queues the Celery workers serve (default: default, plus CT_HEAVY_QUEUE)"),
    ("CT_WORKER_CONCURRENCY", "4", "tasks at once per Celery worker"),
    ("CT_TASK_HEARTBEAT_TIMEOUT_SECONDS", "300", "a task whose worker went silent this long fails (and is "
     "retried)"),
)


def load_params(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """params.yaml's content: CT_PARAMS if set, else the file CT_PARAMS_FILE names, else the repository's."""
    import yaml  # pylint: disable=import-outside-toplevel  # only what loads settings needs it

    env = os.environ if env is None else env
    content = (env.get(PARAMS_VARIABLE) or "").strip()
    where = PARAMS_VARIABLE
    if not content:
        path = Path((env.get(PARAMS_FILE_VARIABLE) or "").strip() or DEFAULT_PARAMS_FILE)
        where = str(path)
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read the parameters file {path} ({exc.strerror}); set "
                                f"{PARAMS_FILE_VARIABLE} to the params.yaml to use") from None
    try:
        loaded = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{where} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{where} must be a mapping of parameters (data, seed, train, gate...)")
    return loaded


def lookup(params: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key (``gate.threshold``); None when any part is missing."""
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _value(item: Declared, env: Mapping[str, str], params: Mapping[str, Any]) -> Any:
    """One setting's value: the environment's, else params.yaml's, else the default."""
    kind, raw = item.spec.kind, (env.get(item.name) or "").strip()
    from_file = lookup(params, item.spec.key) if item.spec.key else None
    if isinstance(kind, JsonObject):
        if from_file is not None and not isinstance(from_file, Mapping):
            raise SettingsError(f"{item.spec.key} in the parameters must be a mapping, got {from_file!r}")
        base = dict(from_file) if from_file is not None else dict(item.default)
        return {**base, **(kind.parse(raw, item.name) if raw else {})}
    if raw:
        return kind.parse(raw, item.name)
    if from_file is not None:
        return kind.from_params(from_file, item.name)
    if item.spec.required:
        raise SettingsError(f"{item.name} is not set, and the parameters (params.yaml) have no "
                            f"{item.spec.key}")
    return item.default


def _check_together(settings: Settings) -> None:
    """What no one setting can check alone."""
    if settings.target_column in settings.drop_columns:
        raise SettingsError(f"DROP_COLUMNS names the target column {settings.target_column!r} "
                            "(TARGET_COLUMN)")
    announce = ("AIRFLOW_API_URL", "AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD")
    missing = [name for name in announce if not getattr(settings, name.lower())]
    if 0 < len(missing) < len(announce):
        raise SettingsError(f"{', '.join(missing)} must be set too: announcing to Airflow needs all of "
                            f"{', '.join(announce)} (or none, to not announce)")
    login = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    given = [bool(getattr(settings, name.lower())) for name in login]
    if any(given) and not all(given):
        raise SettingsError(f"{login[given.index(False)]} must be set too: MLflow's login needs a user and "
                            "a password")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise :class:`SettingsError` naming the first bad one."""
    env = os.environ if env is None else env
    params = load_params(env)
    settings = Settings(**{item.attribute: _value(item, env, params) for item in declared()})
    _check_together(settings)
    return settings


def step_environment(settings: Settings, secret: bool = False) -> dict[str, str]:
    """What a step container is passed: every STEP and SERVICE setting, as the variable that gives it.

    ``secret``: only the secret ones (passed at run time only), else only the others.
    """
    return {item.name: item.spec.kind.text(getattr(settings, item.attribute)) for item in declared()
            if item.spec.scope in (STEP, SERVICE) and item.spec.secret == secret}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (the stack's: settings and secrets); comments and blanks skipped."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
