"""Every setting of the pipeline, read from the environment in this one place.

Steps, the data publisher and the tests all call :func:`load_settings`; nothing
else reads ``os.environ`` for configuration (Twelve-Factor: backing services are
attached by URL and swapped without code changes). The modelling settings
default to params.yaml (pipeline_steps/params.py), which the local pipeline, the
images and the DAG share; a variable that is set (not blank) wins over the file.
A malformed value fails at start with a message that names the variable, rather
than deep inside a step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline_steps import params as parameters
from pipeline_steps.errors import SettingsError

# Every metric evaluate logs. Binary tasks measure precision, recall and f1 on the
# positive class (POSITIVE_CLASS); multiclass tasks average them over classes (macro).
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc")
# The ones the quality gate can compare. The default, f1, is what matters when the
# positive class is the rare one (churn, fraud, a diagnosis): accuracy looks good on
# an imbalanced table by never predicting it. f1_macro or balanced_accuracy weigh
# every class the same when no one class is "the" positive one.
GATE_METRICS = ("f1", "f1_macro", "balanced_accuracy", "roc_auc", "accuracy")
# INVALID_NUMBERS: text in a number column refuses the table, or becomes a missing value (counted).
INVALID_NUMBERS = ("refuse", "missing")


@dataclass(frozen=True)
class S3Settings:
    """Where the S3 service is and how to sign requests to it."""

    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None
    region: str
    data_bucket: str
    artifact_bucket: str
    runs_bucket: str

    def require_credentials(self) -> None:
        """Fail early, naming each missing variable, before any S3 call is made."""
        missing = [
            name
            for name, value in (
                ("AWS_ACCESS_KEY_ID", self.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", self.secret_access_key),
            )
            if not value
        ]
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
class TuneSettings:
    """The optional Optuna study before train (pipeline_steps/tune.py): whether, and its bounds."""

    enabled: bool
    trials: int
    timeout_seconds: int
    folds: int


# Tables to score are published like training data, as the dataset "<DATASET_NAME>_to_score".
SCORING_SUFFIX = "_to_score"


@dataclass(frozen=True)
class Settings:  # pylint: disable=too-many-instance-attributes  # one flat record, read in one place
    """The whole configuration of a step run."""

    s3: S3Settings
    mlflow_tracking_uri: str
    mlflow_experiment: str
    model_name: str
    dataset_name: str
    target_column: str
    csv_delimiter: str
    seed: int
    test_size: float
    quality_threshold: float
    quality_metric: str
    quality_tolerance: float
    tune: TuneSettings
    xgb_params: dict[str, Any] = field(default_factory=dict)
    drop_columns: tuple[str, ...] = ()
    positive_class: str | None = None
    drop_duplicate_rows: bool = False
    invalid_numbers: str = "refuse"
    git_commit: str | None = None
    image: str | None = None
    airflow_api: AirflowApiSettings | None = None
    # MLflow's basic-auth login (user, password); MLflow's client reads the same variables.
    mlflow_login: tuple[str, str] | None = field(default=None, repr=False)

    def pointer_uri(self, dataset_name: str) -> str:
        """Where the newest published version of a dataset name is announced."""
        return f"s3://{self.s3.data_bucket}/published/{dataset_name}.json"

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


def _optional(env: Mapping[str, str], name: str) -> str | None:
    """The stripped value, None when unset or blank (as compose passes `NAME=`)."""
    value = env.get(name, "").strip()
    return value or None


def _given(env: Mapping[str, str], name: str, has_default: bool) -> str | None:
    """The value; a setting with no default in code must come from the environment or params.yaml."""
    raw = _optional(env, name)
    if raw is None and not has_default:
        raise SettingsError(
            f"{name} is not set, and the parameters (params.yaml) have no {parameters.KEYS[name]}"
        )
    return raw


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    raw = _given(env, name, default is not None)
    return raw if raw is not None else str(default)


def _int(env: Mapping[str, str], name: str, minimum: int | None = None) -> int:
    raw = str(_given(env, name, False))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool | None = None) -> bool:
    raw = str(_given(env, name, default is not None) or default).lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _fraction(env: Mapping[str, str], name: str, *, exclusive: bool) -> float:
    raw = str(_given(env, name, False))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    inside = 0 < value < 1 if exclusive else 0 <= value <= 1
    if not inside:
        bounds = "strictly between 0 and 1" if exclusive else "between 0 and 1"
        raise SettingsError(f"{name} must be {bounds}, got {raw!r}")
    return value


def _require_http(value: str | None, name: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must start with http:// or https://, got {value!r}")


def _bucket(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name, default)
    if not 3 <= len(value) <= 63 or value != value.lower() or "/" in value:
        raise SettingsError(
            f"{name} must be an S3 bucket name (3-63 lowercase characters, no '/'), got {value!r}"
        )
    return value


def _xgb_params(env: Mapping[str, str], defaults: dict[str, Any]) -> dict[str, Any]:
    """params.yaml's train.xgb, with XGB_PARAMS (JSON) merged over it."""
    raw = _optional(env, "XGB_PARAMS")
    params = dict(defaults)
    if raw is None:
        return params
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"XGB_PARAMS must be a JSON object: {exc.msg}") from None
    if not isinstance(overrides, dict):
        raise SettingsError("XGB_PARAMS must be a JSON object, e.g. '{\"max_depth\": 6}'")
    params.update(overrides)
    return params


def _metric(env: Mapping[str, str]) -> str:
    value = _text(env, "QUALITY_METRIC")
    if value not in GATE_METRICS:
        raise SettingsError(f"QUALITY_METRIC must be one of {', '.join(GATE_METRICS)}, got {value!r}")
    return value


def _drop_columns(env: Mapping[str, str], target: str) -> tuple[str, ...]:
    """DROP_COLUMNS: comma-separated column names the model must never read (ids, free text, leaks)."""
    names = tuple(n.strip() for n in (_optional(env, "DROP_COLUMNS") or "").split(",") if n.strip())
    if target in names:
        raise SettingsError(f"DROP_COLUMNS names the target column {target!r} (TARGET_COLUMN)")
    return names


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _text(env, name, choices[0])
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _delimiter(env: Mapping[str, str]) -> str:
    value = env.get("CSV_DELIMITER", ",")
    value = "\t" if value == "\\t" else value
    if len(value) != 1:
        raise SettingsError(f"CSV_DELIMITER must be a single character, got {value!r}")
    return value


_AIRFLOW_API_VARIABLES = ("AIRFLOW_API_URL", "AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD")


def _airflow_api(env: Mapping[str, str]) -> AirflowApiSettings | None:
    """All three variables or none: a half-configured announcement would fail only after a publish."""
    url, username, password = (_optional(env, name) for name in _AIRFLOW_API_VARIABLES)
    missing = [name for name, value in zip(_AIRFLOW_API_VARIABLES, (url, username, password)) if not value]
    if len(missing) == len(_AIRFLOW_API_VARIABLES):
        return None
    if missing:
        raise SettingsError(
            f"{', '.join(missing)} must be set too: announcing to Airflow needs all of "
            f"{', '.join(_AIRFLOW_API_VARIABLES)} (or none, to not announce)"
        )
    _require_http(url, "AIRFLOW_API_URL")
    return AirflowApiSettings(url=str(url).rstrip("/"), username=str(username), password=str(password))


_MLFLOW_LOGIN_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def _mlflow_login(env: Mapping[str, str]) -> tuple[str, str] | None:
    """Both or neither: a user without a password would only fail at MLflow, less clearly."""
    username, password = (_optional(env, name) for name in _MLFLOW_LOGIN_VARIABLES)
    if username and password:
        return username, password
    if username or password:
        missing = _MLFLOW_LOGIN_VARIABLES[0] if password else _MLFLOW_LOGIN_VARIABLES[1]
        raise SettingsError(f"{missing} must be set too: MLflow's login needs a user and a password")
    return None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise :class:`SettingsError` naming the first bad one.

    A modelling setting left unset (or blank) takes its value from params.yaml.
    """
    env = os.environ if env is None else env
    params = parameters.load(env)
    env = {**parameters.as_environment(params), **{k: v for k, v in env.items() if v.strip()}}
    s3 = S3Settings(
        endpoint_url=_optional(env, "S3_ENDPOINT_URL"),
        access_key_id=_optional(env, "AWS_ACCESS_KEY_ID"),
        secret_access_key=_optional(env, "AWS_SECRET_ACCESS_KEY"),
        region=_text(env, "AWS_DEFAULT_REGION", "us-east-1"),
        data_bucket=_bucket(env, "S3_DATA_BUCKET", "dvc-data"),
        artifact_bucket=_bucket(env, "S3_ARTIFACT_BUCKET", "mlflow-artifacts"),
        runs_bucket=_bucket(env, "S3_RUNS_BUCKET", "pipeline-runs"),
    )
    _require_http(s3.endpoint_url, "S3_ENDPOINT_URL")
    target = _text(env, "TARGET_COLUMN")
    return Settings(
        s3=s3,
        mlflow_tracking_uri=_text(env, "MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"),
        mlflow_experiment=_text(env, "MLFLOW_EXPERIMENT_NAME", "ct-pipeline"),
        model_name=_text(env, "MODEL_NAME", "ct-xgboost"),
        dataset_name=_text(env, "DATASET_NAME"),
        target_column=target,
        csv_delimiter=_delimiter(env),
        seed=_int(env, "SEED"),
        test_size=_fraction(env, "TEST_SIZE", exclusive=True),
        quality_threshold=_fraction(env, "QUALITY_THRESHOLD", exclusive=False),
        quality_metric=_metric(env),
        quality_tolerance=_fraction(env, "QUALITY_TOLERANCE", exclusive=False),
        tune=TuneSettings(enabled=_bool(env, "TUNE_ENABLED"), trials=_int(env, "TUNE_TRIALS", 1),
                          timeout_seconds=_int(env, "TUNE_TIMEOUT_SECONDS", 1),
                          folds=_int(env, "TUNE_FOLDS", 2)),
        xgb_params=_xgb_params(env, parameters.xgb_params(params)),
        drop_columns=_drop_columns(env, target),
        positive_class=_optional(env, "POSITIVE_CLASS"),
        drop_duplicate_rows=_bool(env, "DROP_DUPLICATE_ROWS", default=False),
        invalid_numbers=_choice(env, "INVALID_NUMBERS", INVALID_NUMBERS),
        git_commit=_optional(env, "GIT_COMMIT"),
        image=_optional(env, "STEP_IMAGE"),
        airflow_api=_airflow_api(env),
        mlflow_login=_mlflow_login(env),
    )
