"""Fixtures: real S3 and MLflow servers for the session, and settings pointing at them."""

from __future__ import annotations

import dataclasses

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_steps.settings import Settings, load_settings
from pipeline_steps.services.storage import Storage
from tests import services

SETTINGS_VARIABLES = (
    "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
    "S3_DATA_BUCKET", "S3_ARTIFACT_BUCKET", "S3_RUNS_BUCKET", "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME", "MODEL_NAME", "DATASET_NAME", "TARGET_COLUMN", "CSV_DELIMITER",
    "SEED", "TEST_SIZE", "QUALITY_THRESHOLD", "QUALITY_METRIC", "QUALITY_TOLERANCE", "XGB_PARAMS",
    "GIT_COMMIT", "CT_PARAMS", "CT_PARAMS_FILE",
    "STEP_IMAGE", "AIRFLOW_API_URL", "AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD",
    "DROP_COLUMNS", "POSITIVE_CLASS", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "DROP_DUPLICATE_ROWS", "INVALID_NUMBERS",
)


@pytest.fixture(autouse=True)
def _clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from defaults, whatever the developer's shell exports."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.S3Server]:
    """A real S3 API (SeaweedFS) with the project's buckets."""
    with services.s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory, s3_server: services.S3Server) -> Iterator[str]:
    """A real MLflow server whose artifacts live on the test S3."""
    with services.mlflow_server(tmp_path_factory.mktemp("mlflow"), s3_server) as uri:
        yield uri


@pytest.fixture
def service_env(
    monkeypatch: pytest.MonkeyPatch, s3_server: services.S3Server, mlflow_uri: str
) -> dict[str, str]:
    """Settings for a test that uses both services; a fresh model name per test."""
    env = {
        "S3_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": services.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": services.SECRET_KEY,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MODEL_NAME": f"model-{uuid.uuid4().hex[:8]}",
        "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "STEP_IMAGE": "ct-test:unit",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:  # pylint: disable=unused-argument
    """Loaded settings for the running services."""
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> Storage:
    """Storage bound to the test S3."""
    return Storage(settings.s3)


@pytest.fixture
def penguins(settings: Settings, service_env: dict[str, str]) -> Settings:
    """Settings for the penguins table: text labels, a text category, gaps."""
    service_env.update(DATASET_NAME="penguins", TARGET_COLUMN="species")
    return dataclasses.replace(settings, dataset_name="penguins", target_column="species")


@pytest.fixture
def run_prefix() -> str:
    """A run-scoped output prefix, as the DAG gives each run."""
    return f"s3://pipeline-runs/runs/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def repo_root() -> Path:
    """The checkout the tests run from."""
    return Path(__file__).resolve().parent.parent
