"""MLflow as the stack runs it, with a login (basic-auth app): the steps log in, or fail in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_steps import cli
from pipeline_steps.services import tracking
from pipeline_steps.settings import load_settings
from tests import services

PASSWORD = "mlflow-admin-pw-123"


@pytest.fixture(scope="module")
def login_mlflow_uri(
    tmp_path_factory: pytest.TempPathFactory, s3_server: services.S3Server
) -> Iterator[str]:
    """A real MLflow server that answers only to user admin with PASSWORD."""
    with services.mlflow_server(tmp_path_factory.mktemp("mlflow-login"), s3_server, PASSWORD) as uri:
        yield uri


def step_env(s3_server: services.S3Server, uri: str, **login: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "S3_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": services.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": services.SECRET_KEY,
        "MLFLOW_TRACKING_URI": uri, "DATASET_NAME": f"nothing-{uuid.uuid4().hex[:6]}", **login,
    }


def check_data(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline_steps", "check_data"], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_a_step_with_the_login_tracks_and_registers(
    login_mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One environment, as in a step container: the settings and MLflow's client both read it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", login_mlflow_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = tracking.connect(load_settings())
    experiment = client.create_experiment(f"login-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "f1", 0.9)
    name = f"model-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    assert client.get_registered_model(name).name == name
    assert client.get_run(run.info.run_id).data.metrics == {"f1": 0.9}


@pytest.mark.parametrize("login", [
    {},
    {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "not-the-password"},
], ids=["no login", "wrong password"])
def test_a_step_without_the_right_login_fails_at_once_in_one_line(
    login_mlflow_uri: str, s3_server: services.S3Server, login: dict[str, str], tmp_path: Path
) -> None:
    done = check_data(step_env(s3_server, login_mlflow_uri, **login), tmp_path)
    assert done.returncode == cli.EXIT_PERMANENT, done.stderr  # no retry brings the right password
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: check_data: MLflow at {login_mlflow_uri} answered GET "
                           "/api/2.0/mlflow/experiments/search with HTTP 401 ("), last
    assert last.endswith("): the login is missing or wrong"), last


def test_the_same_step_with_the_login_answers(
    login_mlflow_uri: str, s3_server: services.S3Server, tmp_path: Path
) -> None:
    env = step_env(s3_server, login_mlflow_uri, MLFLOW_TRACKING_USERNAME="admin",
                   MLFLOW_TRACKING_PASSWORD=PASSWORD)
    done = check_data(env, tmp_path)
    assert done.returncode == cli.EXIT_OK, done.stderr
    assert '"latest_version": null' in done.stdout
