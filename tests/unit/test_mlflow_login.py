"""MLflow as the stack runs it, with a login (basic-auth app): the steps log in, or fail in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
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


def test_the_model_servers_setup_makes_a_user_who_may_only_read_and_the_alias_webhook(
    login_mlflow_uri: str, s3_server: services.S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = step_env(s3_server, login_mlflow_uri, MLFLOW_TRACKING_USERNAME="admin",
                   MLFLOW_TRACKING_PASSWORD=PASSWORD, MLFLOW_SERVER_PASSWORD="server-password-1",
                   SERVE_WEBHOOK_SECRET="hook-secret",
                   SERVE_WEBHOOK_URL="http://model-server:8000/webhooks/mlflow")
    setup = [sys.executable, "-m", "pipeline_steps", "model_server", "setup"]
    first = subprocess.run(setup, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == cli.EXIT_OK, first.stderr
    assert "created MLflow user model-server" in first.stdout and "created MLflow webhook" in first.stdout
    # Again (every make up runs it): the same user with the password of now, the same webhook.
    again = subprocess.run(setup, cwd=tmp_path, env={**env, "MLFLOW_SERVER_PASSWORD": "server-password-2"},
                           capture_output=True, text=True, check=False)
    assert again.returncode == cli.EXIT_OK, again.stderr
    assert "updated MLflow webhook ct-model-server" in again.stdout

    monkeypatch.setenv("MLFLOW_TRACKING_URI", login_mlflow_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    admin = tracking.connect(load_settings())
    hooks = [hook for hook in admin.list_webhooks() if hook.name == "ct-model-server"]
    assert len(hooks) == 1 and hooks[0].url == "http://model-server:8000/webhooks/mlflow"
    assert {str(event) for event in hooks[0].events} == {"model_version_alias.created",
                                                         "model_version_alias.deleted"}
    name = f"model-{uuid.uuid4().hex[:6]}"
    admin.create_registered_model(name)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "model-server")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "server-password-2")
    server = tracking.connect(load_settings())
    assert server.get_registered_model(name).name == name
    # Nothing that exists can it change (MLflow lets any user create things of its own, though).
    with pytest.raises(mlflow.exceptions.MlflowException, match="(?i)permission"):
        server.set_registered_model_tag(name, "touched", "yes")
    with pytest.raises(mlflow.exceptions.MlflowException, match="(?i)permission"):
        server.set_registered_model_alias(name, "production", "1")
    with pytest.raises(mlflow.exceptions.MlflowException, match="(?i)permission"):
        server.delete_registered_model(name)
