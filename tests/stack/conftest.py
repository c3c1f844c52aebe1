"""The real stack, started once for this folder with `make up`'s script, torn down at the end."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
# MLflow 3 clients fetch artifacts through presigned S3 URLs that name the S3 service
# as the stack's containers see it (http://s3:9000); from the host, stream them
# through the tracking server instead (README: "MLflow from the host").
os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] = "false"
ENV_FILE = REPO / ".env.e2e"
# A stack of its own beside any the developer runs: project, network, ports and .env.
# Short sensor timings, so a run with no new data skips in seconds, not minutes.
STACK_ENV = {
    "COMPOSE_PROJECT_NAME": "ct-e2e", "ENV_FILE": str(ENV_FILE), "CT_DOCKER_NETWORK": "ct-e2e",
    "AIRFLOW_PORT": "18080", "MLFLOW_PORT": "15000", "S3_PORT": "19000", "S3_CONSOLE_PORT": "19001",
    "CT_SENSOR_POKE_SECONDS": "5", "CT_SENSOR_TIMEOUT_SECONDS": "20", "WAIT_SECONDS": "900",
}


def _load_airflow_client() -> ModuleType:
    path = REPO / "infra" / "scripts" / "airflow_client.py"
    spec = importlib.util.spec_from_file_location("airflow_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


airflow_client = _load_airflow_client()


def stack_command(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a stack script (infra/scripts) with the test's environment; print how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        list(args), cwd=REPO, env={**os.environ, **STACK_ENV}, capture_output=True, text=True,
        check=False, timeout=1800,
    )
    print(f"phase {' '.join(args)}: {time.monotonic() - started:.0f}s")
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    return done


def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """docker compose on the stack, as the Makefile runs it."""
    return stack_command("bash", "-c", 'source infra/scripts/stack.sh && compose "$@"', "compose", *args,
                         check=check)


@dataclass
class Stack:
    """Where the running stack answers, and its secrets."""

    env: dict[str, str]
    up_output: str
    airflow_url: str = f"http://localhost:{STACK_ENV['AIRFLOW_PORT']}"
    mlflow_url: str = f"http://localhost:{STACK_ENV['MLFLOW_PORT']}"
    s3_url: str = f"http://localhost:{STACK_ENV['S3_PORT']}"

    def airflow(self):
        """A logged-in Airflow REST client."""
        return airflow_client.AirflowClient(self.airflow_url, "admin", self.env["AIRFLOW_ADMIN_PASSWORD"])

    def s3(self):
        """boto3 S3 client with the stack's keys."""
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                            aws_access_key_id=self.env["S3_ACCESS_KEY"],
                            aws_secret_access_key=self.env["S3_SECRET_KEY"])


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """`make up` from nothing (no .env, no volumes); everything removed at the end."""
    compose("down", "--volumes", "--remove-orphans", check=False)
    ENV_FILE.unlink(missing_ok=True)
    try:
        up = stack_command("infra/scripts/up.sh")
        yield Stack(env=airflow_client.read_env_file(ENV_FILE), up_output=up.stdout + up.stderr)
    finally:
        logs = compose("logs", "--no-color", "--tail=300", check=False)
        (REPO / "stack-logs.txt").write_text(logs.stdout + logs.stderr, encoding="utf-8")
        compose("down", "--volumes", "--remove-orphans", check=False)
