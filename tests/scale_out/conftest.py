"""Celery stacks of their own (`make up EXECUTOR=celery ...`), beside any other, removed by `make clean`.

One per test module, one at a time: two local workers (test_celery_workers), and
one local worker with another on "another host" (test_remote_worker). Their settings
are the ones a scale-out deployment would change: two runs at once, and a worker
that goes silent is given up on after a minute instead of five, so that the test of
a lost worker does not wait for Airflow's default. Promotions need no person.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.host_scripts import airflow_client
from tests.stack.conftest import REPO, attach_evidence, compose, stack_command

ENV_FILE = REPO / ".env.scale-out"
SCALE_OUT_ENV = {
    "COMPOSE_PROJECT_NAME": "ct-scale-out", "ENV_FILE": str(ENV_FILE),
    "AIRFLOW_PORT": "28080", "MLFLOW_PORT": "25000", "S3_PORT": "29000", "S3_CONSOLE_PORT": "29001",
    "FLOWER_PORT": "25555", "WAIT_SECONDS": "900", "EXECUTOR": "celery", "WORKERS": "2",
    "CT_MAX_ACTIVE_RUNS": "2", "CT_TASK_HEARTBEAT_TIMEOUT_SECONDS": "60", "CT_STEP_RETRY_DELAY_SECONDS": "5",
    # The stack's first scheduled run is promoted without a person, so that no run waits for one.
    "CT_AUTO_APPROVE": "true",
}


@dataclass
class CeleryStack:
    """Where a Celery stack answers, its secrets, and the runs the tests started."""

    env: dict[str, str]
    up_output: str
    stack_env: dict[str, str] = field(default_factory=lambda: SCALE_OUT_ENV)
    runs: list[str] = field(default_factory=list)

    @property
    def airflow_url(self) -> str:
        """The Airflow UI and REST API, as the host sees them."""
        return f"http://localhost:{self.stack_env['AIRFLOW_PORT']}"

    @property
    def flower_url(self) -> str:
        """Flower, as the host sees it."""
        return f"http://localhost:{self.stack_env['FLOWER_PORT']}"

    def airflow(self) -> airflow_client.AirflowClient:
        """A logged-in Airflow REST client."""
        return airflow_client.AirflowClient(self.airflow_url, "admin", self.env["AIRFLOW_ADMIN_PASSWORD"])

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """docker compose on this stack, as the Makefile runs it."""
        return compose(*args, check=check, stack_env=self.stack_env)

    def flower_workers(self) -> dict[str, Any]:
        """Flower's view of the workers, asked of them now (refresh), with the admin's login."""
        login = base64.b64encode(f"admin:{self.env['AIRFLOW_ADMIN_PASSWORD']}".encode()).decode()
        request = urllib.request.Request(f"{self.flower_url}/api/workers?refresh=1",
                                         headers={"Authorization": f"Basic {login}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def workers(self) -> dict[str, str]:
        """Each running worker container's hostname (what Airflow records per task) -> its id."""
        return running_hostnames(self.compose("ps", "-q", "airflow-worker").stdout.split())

    def evidence(self) -> str:
        """For each run of the current test: its task states with their hosts, failed tries' logs."""
        client, sections = self.airflow(), []
        for run_id in self.runs:
            tasks = [(t["task_id"], t["state"], t.get("hostname"), t.get("try_number"))
                     for t in client.task_instances(run_id)]
            sections.append(f"##### run {run_id}: {client.run(run_id)['state']} {tasks}")
            sections.append(client.failure_evidence(run_id) or "(no failed try)")
        workers = self.compose("logs", "--no-color", "--tail=200", "airflow-worker", "airflow-scheduler",
                               check=False)
        sections.append("##### the workers' and the scheduler's last lines")
        sections.append(workers.stdout + workers.stderr)
        return "\n".join(sections)


def running_hostnames(containers: list[str]) -> dict[str, str]:
    """The hostname (what Airflow records per task) -> id of each of these containers that runs."""
    found = {}
    for container in containers:
        inspected = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}} {{.Config.Hostname}}",
                                    container], capture_output=True, text=True, check=True).stdout.split()
        if inspected[0] == "true":
            found[inspected[1]] = container
    return found


def make(*args: str, check: bool = True, stack_env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    """A make target or stack script run for a stack (the two-worker one unless told), as a user runs it."""
    return stack_command(*args, check=check, stack_env=stack_env or SCALE_OUT_ENV)


@contextmanager
def celery_stack_up(stack_env: dict[str, str], logs_file: str) -> Iterator[CeleryStack]:
    """`make up` of a Celery stack from nothing; its last log lines in ``logs_file`` and
    `make clean` (volumes too) at the end."""
    env_file = Path(stack_env["ENV_FILE"])
    make("make", "clean", "CONFIRM=yes", check=False, stack_env=stack_env)
    env_file.unlink(missing_ok=True)
    try:
        up = make("make", "up", stack_env=stack_env)
        yield CeleryStack(env=airflow_client.read_env_file(env_file), up_output=up.stdout + up.stderr,
                          stack_env=stack_env)
    finally:
        logs = compose("logs", "--no-color", "--tail=300", check=False, stack_env=stack_env)
        (REPO / logs_file).write_text(logs.stdout + logs.stderr, encoding="utf-8")
        make("make", "clean", "CONFIRM=yes", check=False, stack_env=stack_env)


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[CeleryStack]:
    """`make up EXECUTOR=celery WORKERS=2` from nothing; removed with its volumes at the end."""
    with celery_stack_up(SCALE_OUT_ENV, "scale-out-logs.txt") as stack:
        yield stack


@pytest.fixture(autouse=True)
def _runs_of_this_test(request: pytest.FixtureRequest) -> None:
    """Each test starts with no runs on record; its own are what a failure report shows."""
    if "celery_stack" in request.fixturenames:
        request.getfixturevalue("celery_stack").runs.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """A failed test's report carries its runs' task hosts and the whole logs of failed tries."""
    outcome = yield
    attach_evidence(item, call, outcome.get_result(), "celery_stack")
