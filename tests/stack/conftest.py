"""The real stack, started once for this folder with `make up`'s script, torn down at the end.

When a test fails, its report carries the evidence: for every DAG run the test
started, the whole log of every failed try of every task, and the scheduler's
log over the run's lifetime. Nobody should have to reproduce a failure to see it.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.host_scripts import airflow_client
from tests.serving import ServerClient
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
# MLflow 3 clients fetch artifacts through presigned S3 URLs that name the S3 service
# as the stack's containers see it (http://s3:9000); from the host, stream them
# through the tracking server instead (README: "MLflow from the host").
os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] = "false"
ENV_FILE = REPO / ".env.e2e"
RECEIVER_PORT = free_port()
# A stack of its own beside any the developer runs: project (and so its network, ct-e2e_mlops),
# ports and .env.
# Its notifications go to a receiver this test session runs on the host.
STACK_ENV = {
    "COMPOSE_PROJECT_NAME": "ct-e2e", "ENV_FILE": str(ENV_FILE),
    "AIRFLOW_PORT": "18080", "MLFLOW_PORT": "15000", "S3_PORT": "19000", "S3_CONSOLE_PORT": "19001",
    "SERVE_PORT": "18000",
    "WAIT_SECONDS": "900", "CT_NOTIFY_WEBHOOK": f"http://host.docker.internal:{RECEIVER_PORT}/ct-notify",
    # The model server's own look at the alias is rare here: a swap within seconds is the webhook's.
    "SERVE_ALIAS_CHECK_SECONDS": "30",
    # Monitoring (test_stack_monitoring.py): only the tests start it (an hourly run could take their
    # window), any drifted column notifies, and a monitor run is late after a minute.
    "CT_MONITOR_SCHEDULE": "none", "MONITOR_MAX_DRIFT_SHARE": "0", "CT_MONITOR_DEADLINE_MINUTES": "1",
}


def stack_command(*args: str, check: bool = True, stack_env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess:
    """Run a stack script or make target with the test's environment (or ``stack_env``: another
    stack's); print how long it took."""
    started = time.monotonic()
    # A make target is run as a user runs it, not as a sub-make of `make e2e` (which prints
    # "Entering directory" lines around its output).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        list(args), cwd=REPO, env={**env, **(stack_env or STACK_ENV)}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False, timeout=1800,
    )
    print(f"phase {' '.join(args)}: {time.monotonic() - started:.0f}s")
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    return done


def compose(*args: str, check: bool = True, stack_env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """docker compose on the stack (or ``stack_env``'s), as the Makefile runs it."""
    return stack_command("bash", "-c", 'source infra/scripts/stack.sh && compose "$@"', "compose", *args,
                         check=check, stack_env=stack_env)


class NotificationReceiver:
    """A real HTTP endpoint on the host that records every JSON body POSTed to it."""

    def __init__(self, port: int) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            """Records the JSON body of each POST and answers 200."""

            def do_POST(self) -> None:  # pylint: disable=invalid-name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, timeout: float = 120, **fields: str) -> dict[str, Any]:
        """The first notification whose fields have these values."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received:
                if all(message.get(key) == value for key, value in fields.items()):
                    return message
            time.sleep(1)
        raise AssertionError(f"no notification with {fields} in {timeout:.0f}s; received: {self.received}")


@dataclass
class Stack:
    """Where the running stack answers, its secrets, and the runs each test started."""

    env: dict[str, str]
    up_output: str
    notifications: NotificationReceiver
    runs: list[str] = field(default_factory=list)
    airflow_url: str = f"http://localhost:{STACK_ENV['AIRFLOW_PORT']}"
    mlflow_url: str = f"http://localhost:{STACK_ENV['MLFLOW_PORT']}"
    s3_url: str = f"http://localhost:{STACK_ENV['S3_PORT']}"
    serve_url: str = f"http://localhost:{STACK_ENV['SERVE_PORT']}"

    def model_server(self) -> ServerClient:
        """The model server, asked with the stack's key."""
        return ServerClient(self.serve_url, self.env["SERVE_API_KEY"])

    def airflow(self):
        """A logged-in Airflow REST client."""
        return airflow_client.AirflowClient(self.airflow_url, "admin", self.env["AIRFLOW_ADMIN_PASSWORD"])

    def s3(self):
        """boto3 S3 client with the stack's keys."""
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                            aws_access_key_id=self.env["S3_ACCESS_KEY"],
                            aws_secret_access_key=self.env["S3_SECRET_KEY"])

    def _find_run(self, run_id: str) -> tuple[str, dict[str, Any]]:
        """The DAG a run id belongs to (the tests start runs of every DAG of the stack), and the run."""
        client = self.airflow()
        for dag_id in DAG_IDS:
            try:
                return dag_id, client.run(run_id, dag_id)
            except Exception:  # pylint: disable=broad-exception-caught  # not this DAG's run
                continue
        raise LookupError(f"no DAG has a run {run_id}")

    def evidence(self) -> str:
        """For each run of the current test: task states, failed tries' whole logs, scheduler log."""
        client, sections = self.airflow(), []
        for run_id in self.runs:
            dag_id, run = self._find_run(run_id)
            states = client.task_states(run_id, dag_id)
            sections.append(f"##### {dag_id} run {run_id}: {run['state']} {states}")
            sections.append(client.failure_evidence(run_id, dag_id) or "(no failed try)")
            sections.append(f"##### scheduler log from {run.get('queued_at')} to {run.get('end_date')}")
            sections.append(scheduler_log(run.get("queued_at"), run.get("end_date")))
        return "\n".join(sections)


DAG_IDS = ("ml_training_pipeline", "batch_scoring", "rollback_production", "monitor_production")


def scheduler_log(since: str | None, until: str | None) -> str:
    """The scheduler container's own log over a time window (a little before and after)."""
    def shifted(stamp: str | None, seconds: int) -> str:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else dt.datetime.now(dt.UTC)
        return (moment + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")

    container = compose("ps", "-q", "airflow-scheduler", check=False).stdout.strip()
    if not container:
        return "(no scheduler container)"
    done = subprocess.run(["docker", "logs", "--since", shifted(since, -10), "--until", shifted(until, 30),
                           container], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """`make up` from nothing (no .env, no volumes); everything removed at the end."""
    receiver = NotificationReceiver(RECEIVER_PORT)
    compose("down", "--volumes", "--remove-orphans", check=False)
    ENV_FILE.unlink(missing_ok=True)
    try:
        up = stack_command("infra/scripts/up.sh")
        yield Stack(env=airflow_client.read_env_file(ENV_FILE), up_output=up.stdout + up.stderr,
                    notifications=receiver)
    finally:
        logs = compose("logs", "--no-color", "--tail=300", check=False)
        (REPO / "stack-logs.txt").write_text(logs.stdout + logs.stderr, encoding="utf-8")
        compose("down", "--volumes", "--remove-orphans", check=False)
        receiver.server.shutdown()


@pytest.fixture(autouse=True)
def _mlflow_login(
    _clean_settings: None, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow asks for a login: the tests' MLflow clients log in as a user on the host does.

    Set after tests/conftest.py has cleared every setting, MLflow's login among them.
    """
    if "stack" in request.fixturenames:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD",
                           request.getfixturevalue("stack").env["MLFLOW_ADMIN_PASSWORD"])


@pytest.fixture(autouse=True)
def _runs_of_this_test(request: pytest.FixtureRequest) -> None:
    """Each test starts with no runs on record; its own are what a failure report shows."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").runs.clear()


def attach_evidence(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport,
                    fixture: str) -> None:
    """Add the evidence of the stack in ``fixture`` (its ``evidence()``) to a failed test's report."""
    under_test = item.funcargs.get(fixture) if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and under_test and under_test.runs:
        try:
            report.sections.append(("evidence: the runs of this test", under_test.evidence()))
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the report must not be lost
            report.sections.append(("evidence", f"could not collect it: {exc!r} (call: {call.when})"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed stack test's report carries the whole logs of its runs' failed tries."""
    outcome = yield
    attach_evidence(item, call, outcome.get_result(), "stack")
