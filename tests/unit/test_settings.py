"""Settings come from the environment over params.yaml's defaults, in one place; bad ones are named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_steps.errors import SettingsError
from pipeline_steps.settings import GATE_METRICS, SECRETS, declared, load_settings, lookup


def test_defaults_need_no_environment_come_from_params_yaml_and_track_into_local_sqlite(
    repo_root: Path,
) -> None:
    settings = load_settings({})
    defaults = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert settings.mlflow_tracking_uri == "sqlite:///mlflow.db"
    assert settings.seed == defaults["seed"] == 42
    assert settings.test_size == defaults["prepare"]["test_size"]
    assert settings.quality_threshold == defaults["gate"]["threshold"] == 0.85
    assert settings.quality_metric == defaults["gate"]["metric"] == "f1"
    assert settings.quality_tolerance == defaults["gate"]["tolerance"] == 0.0
    assert settings.xgb_params == defaults["train"]["xgb"]
    assert (settings.dataset_name, settings.target_column) == ("breast_cancer", "target")
    assert settings.published_pointer_uri == "s3://dvc-data/published/breast_cancer.json"
    assert settings.s3.dvc_remote_url == "s3://dvc-data/dvcstore"


def test_values_are_read_from_the_environment() -> None:
    settings = load_settings({
        "S3_ENDPOINT_URL": "http://s3:9000", "S3_DATA_BUCKET": "my-data",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000", "MODEL_NAME": "churn",
        "DATASET_NAME": "customers", "TARGET_COLUMN": "churned", "SEED": "7",
        "QUALITY_THRESHOLD": "0.9", "QUALITY_METRIC": "roc_auc", "CSV_DELIMITER": "\\t",
        "XGB_PARAMS": '{"max_depth": 6}', "DROP_COLUMNS": " customer_id ,notes,", "POSITIVE_CLASS": "Yes",
    })
    assert settings.drop_columns == ("customer_id", "notes")
    assert settings.positive_class == "Yes"
    assert settings.s3.endpoint_url == "http://s3:9000"
    assert settings.published_pointer_uri == "s3://my-data/published/customers.json"
    assert (settings.model_name, settings.target_column, settings.seed) == ("churn", "churned", 7)
    assert (settings.quality_threshold, settings.quality_metric) == (0.9, "roc_auc")
    assert settings.csv_delimiter == "\t"
    assert settings.xgb_params["max_depth"] == 6
    assert settings.xgb_params["n_estimators"] == load_settings({}).xgb_params["n_estimators"]


def test_a_params_file_sets_the_defaults_and_a_set_variable_wins_over_it(tmp_path: Path) -> None:
    own = tmp_path / "params.yaml"
    own.write_text(
        "data: {name: customers, target: churned, drop_columns: [id, notes], positive_class: 'yes'}\n"
        "seed: 7\nprepare: {test_size: 0.3}\ntrain: {xgb: {max_depth: 3, n_estimators: 50}}\n"
        "gate: {metric: roc_auc, threshold: 0.7, tolerance: 0.02}\n"
        "tune: {enabled: true, trials: 5, timeout_seconds: 60, folds: 4}\n"
    )
    settings = load_settings({"CT_PARAMS_FILE": str(own), "SEED": "11", "TEST_SIZE": "",
                              "XGB_PARAMS": '{"max_depth": 6}'})
    assert (settings.dataset_name, settings.target_column, settings.positive_class) == (
        "customers", "churned", "yes")
    assert settings.drop_columns == ("id", "notes")
    assert settings.seed == 11  # the environment wins
    assert settings.test_size == 0.3  # blank counts as unset, as compose passes `NAME=`
    assert settings.xgb_params == {"max_depth": 6, "n_estimators": 50}  # merged over train.xgb
    assert (settings.quality_metric, settings.quality_threshold, settings.quality_tolerance) == (
        "roc_auc", 0.7, 0.02)
    assert (settings.tune_enabled, settings.tune_trials, settings.tune_timeout_seconds,
            settings.tune_folds) == (True, 5, 60, 4)


def repo_params(**changed: Any) -> dict[str, Any]:
    """The repository's params.yaml, with whole sections replaced."""
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    return {**params, **changed}


def test_the_parameters_passed_as_content_win_over_the_file() -> None:
    content = repo_params(data={"name": "penguins", "target": "species"}, seed=3, train={})
    settings = load_settings({"CT_PARAMS": json.dumps(content)})
    assert (settings.dataset_name, settings.target_column, settings.seed) == ("penguins", "species", 3)
    assert not settings.xgb_params  # no train.xgb: XGBoost's own defaults


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("seed: [1", r"^CT_PARAMS is not valid YAML: "),
        ("- 1", r"^CT_PARAMS must be a mapping of parameters"),
        ("seed: 1", r"^DATASET_NAME is not set, and the parameters \(params.yaml\) have no data.name$"),
        (json.dumps(repo_params(gate={"metric": "f1"})),
         r"^QUALITY_THRESHOLD is not set, and the parameters \(params.yaml\) have no gate.threshold$"),
        (json.dumps(repo_params(train={"xgb": 3})),
         r"^train.xgb in the parameters must be a mapping, got 3$"),
        (json.dumps(repo_params(tune={"enabled": "maybe"})), r"^TUNE_ENABLED must be true or false"),
        (json.dumps(repo_params(tune={"enabled": False, "trials": 0, "timeout_seconds": 9, "folds": 3})),
         r"^TUNE_TRIALS must be at least 1, got '0'$"),
    ],
)
def test_bad_or_missing_parameters_are_named(content: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"CT_PARAMS": content})


def test_a_missing_params_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError,
                       match=r"^cannot read the parameters file .*nowhere.yaml .*CT_PARAMS_FILE"):
        load_settings({"CT_PARAMS_FILE": str(tmp_path / "nowhere.yaml")})


def leaves(mapping: dict, prefix: str = "") -> set[str]:
    """The dotted keys of a nested mapping's values (train.xgb counts as one: it is one setting)."""
    found = set()
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        nested = isinstance(value, dict) and dotted != "train.xgb"
        found |= leaves(value, f"{dotted}.") if nested else {dotted}
    return found


def test_every_key_of_params_yaml_is_a_declared_setting_and_back(repo_root: Path) -> None:
    defaults = yaml.safe_load((repo_root / "params.yaml").read_text())
    keyed = {item.spec.key for item in declared() if item.spec.key}
    assert leaves(defaults) == keyed
    assert all(lookup(defaults, key) is not None or key == "data.positive_class" for key in keyed)


def test_each_setting_is_named_once_and_its_variable_is_its_name() -> None:
    names = [item.name for item in declared()]
    assert len(names) == len(set(names))
    # A setting named like a secret is that secret (the model server's key), never one a person
    # sets in .env.settings, which any service's `docker inspect` shows.
    assert all(item.spec.secret and not item.spec.user_set for item in declared()
               if item.name in {secret.name for secret in SECRETS})
    assert all(item.name == item.attribute.upper() for item in declared())
    assert {item.spec.param for item in declared() if item.spec.param} == {
        "xgb_params", "tune", "metric", "threshold", "tolerance", "max_drift_share", "auto_approve"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SEED": "x"}, "SEED must be an integer, got 'x'"),
        ({"QUALITY_THRESHOLD": "high"}, "QUALITY_THRESHOLD must be a number"),
        ({"QUALITY_THRESHOLD": "1.5"}, "QUALITY_THRESHOLD must be between 0 and 1"),
        ({"TEST_SIZE": "0"}, "TEST_SIZE must be strictly between 0 and 1"),
        ({"QUALITY_METRIC": "loss"}, "QUALITY_METRIC must be one of f1, f1_macro, balanced_accuracy"),
        ({"QUALITY_METRIC": "precision"}, "QUALITY_METRIC must be one of f1, f1_macro"),
        ({"DROP_COLUMNS": "id, target"}, "DROP_COLUMNS names the target column 'target'"),
        ({"XGB_PARAMS": "{max_depth: 6}"}, "XGB_PARAMS must be a JSON object"),
        ({"XGB_PARAMS": "[1]"}, "XGB_PARAMS must be a JSON object"),
        ({"S3_DATA_BUCKET": "Data"}, "S3_DATA_BUCKET must be an S3 bucket name"),
        ({"S3_ENDPOINT_URL": "s3:9000"}, "S3_ENDPOINT_URL must start with http:// or https://"),
        ({"CSV_DELIMITER": ";;"}, "CSV_DELIMITER must be a single character"),
    ],
)
def test_a_malformed_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(")):
        load_settings(env)


def test_a_blank_setting_counts_as_unset() -> None:
    assert load_settings({"MODEL_NAME": "  ", "SEED": ""}).model_name == "ct-xgboost"
    assert load_settings({"SEED": ""}).seed == 42


def test_s3_keys_are_required_only_when_s3_is_used() -> None:
    s3 = load_settings({"AWS_ACCESS_KEY_ID": "id"}).s3
    with pytest.raises(SettingsError, match="^AWS_SECRET_ACCESS_KEY must be set to use S3"):
        s3.require_credentials()


AIRFLOW_API = {
    "AIRFLOW_API_URL": "http://airflow-apiserver:8080/",
    "AIRFLOW_API_USERNAME": "admin",
    "AIRFLOW_API_PASSWORD": "s3cret",
}


def test_the_airflow_api_is_optional_and_read_whole() -> None:
    assert load_settings({}).airflow_api is None
    api = load_settings(AIRFLOW_API).airflow_api
    assert api is not None
    assert (api.url, api.username, api.password) == ("http://airflow-apiserver:8080", "admin", "s3cret")
    assert "s3cret" not in repr(api)


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        (("AIRFLOW_API_PASSWORD",), "AIRFLOW_API_PASSWORD"),
        (("AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD"), "AIRFLOW_API_USERNAME, AIRFLOW_API_PASSWORD"),
        (("AIRFLOW_API_URL",), "AIRFLOW_API_URL"),
    ],
)
def test_a_partial_airflow_api_is_named(unset: tuple[str, ...], named: str) -> None:
    env = {k: v for k, v in AIRFLOW_API.items() if k not in unset}
    with pytest.raises(SettingsError, match=f"^{named} must be set too: announcing to Airflow needs all"):
        load_settings(env)


def test_the_mlflow_login_is_optional_read_whole_and_never_printed() -> None:
    assert load_settings({}).mlflow_login is None
    settings = load_settings({"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "s3cret"})
    assert settings.mlflow_login == ("admin", "s3cret")
    assert "s3cret" not in repr(settings)
    with pytest.raises(SettingsError, match="^MLFLOW_TRACKING_PASSWORD must be set too: MLflow's login"):
        load_settings({"MLFLOW_TRACKING_USERNAME": "admin"})
    with pytest.raises(SettingsError, match="^MLFLOW_TRACKING_USERNAME must be set too: MLflow's login"):
        load_settings({"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": "s3cret"})


def test_an_airflow_api_url_without_a_scheme_is_named() -> None:
    with pytest.raises(SettingsError, match="^AIRFLOW_API_URL must start with http:// or https://"):
        load_settings({**AIRFLOW_API, "AIRFLOW_API_URL": "airflow-apiserver:8080"})


def test_the_gate_metric_is_one_the_gate_can_compare_and_so_is_the_dag_s_choice() -> None:
    [metric] = [item for item in declared() if item.spec.param == "metric"]
    assert metric.spec.kind.schema() == {"type": "string", "enum": list(GATE_METRICS)}
    assert GATE_METRICS[0] == load_settings({}).quality_metric
