"""A step's result, and whether its failure is retried, do not depend on chance.

These run real containers of the check-data image through the DAG's own
StepOperator, with a script in place of the step's CLI so the timing is ours:
the result is printed on stdout and log lines go to stderr before *and after*
it. The Docker daemon does not keep line order across the two streams, so the
last line of both together is a stderr line every time here; the result must
be read from stdout alone.
"""

from __future__ import annotations

import uuid

import docker
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from ct_tasks import stack_config
from ct_tasks.step_tasks import LABEL_RUN, StepOperator, StepResultError
from pipeline_steps import pipeline

CHECK = pipeline.step("check_data")
IMAGE = "ct-check-data:latest"
# Every test needs the image; the fixture says how to build it when it is missing.
pytestmark = pytest.mark.usefixtures("docker_api")
TRIES = 30
# Logs before the result, the result, then (after a pause, so that they are certainly
# later) timestamped log lines, as a step's logging would write them.
LOGS_AROUND_THE_RESULT = """
import json, sys, time
run = sys.argv[1]
for i in range(5):
    print(f"2026-11-23 12:00:0{i} INFO step: before {i}", file=sys.stderr, flush=True)
print(json.dumps({"step": "test", "run": run, "value": 0.97}), flush=True)
time.sleep(0.05)
for i in range(5):
    print(f"2026-11-23 12:00:1{i} INFO step: after {i}", file=sys.stderr, flush=True)
"""
FAILS_WITH = """
import sys
print("2026-11-23 12:00:00 INFO step: working", file=sys.stderr, flush=True)
print(f"error: prepare: {sys.argv[2]}", file=sys.stderr, flush=True)
print("2026-11-23 12:00:01 INFO step: after the error", file=sys.stderr, flush=True)
raise SystemExit(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def docker_api() -> docker.APIClient:
    client = docker.APIClient(base_url="unix://var/run/docker.sock")
    try:
        client.inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{IMAGE} is missing: build it with `make build-images IMAGES=check-data`")
    return client


def run_script(script: str, *args: str) -> tuple[dict | None, str]:
    """Run a script as a step task would run; return its XCom value and the run id it used."""
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    operator = StepOperator(
        task_id="probe", step=CHECK, command=["-c", script, *args],
        entrypoint=["python"], network_mode="bridge",
    )
    return operator.execute({"run_id": run_id}), run_id


def containers_of(docker_api: docker.APIClient, run_id: str) -> list:
    return docker_api.containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})


def test_the_result_is_read_right_whatever_stderr_does_around_it(docker_api) -> None:
    for attempt in range(TRIES):
        marker = f"try-{attempt}"
        result, run_id = run_script(LOGS_AROUND_THE_RESULT, marker)
        assert result == {"step": "test", "run": marker, "value": 0.97}, f"try {attempt + 1} of {TRIES}"
        assert containers_of(docker_api, run_id) == []


def test_a_failure_no_retry_can_fix_fails_at_once_with_the_steps_own_error() -> None:
    with pytest.raises(AirflowFailException) as failure:
        run_script(FAILS_WITH, "3", "target column 'label' not found in data.csv")
    assert str(failure.value) == (
        "error: prepare: target column 'label' not found in data.csv "
        "(exit code 3: no retry can fix this)"
    )


def test_a_transient_failure_is_left_to_the_retries() -> None:
    with pytest.raises(AirflowException) as failure:
        run_script(FAILS_WITH, "1", "S3 unreachable at http://s3:9000")
    assert not isinstance(failure.value, AirflowFailException)
    assert str(failure.value) == "error: prepare: S3 unreachable at http://s3:9000 (exit code 1)"


def test_a_failed_step_leaves_no_container(docker_api) -> None:
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    operator = StepOperator(task_id="probe", step=CHECK, entrypoint=["python"],
                            command=["-c", FAILS_WITH, "1", "boom"], network_mode="bridge")
    with pytest.raises(AirflowException):
        operator.execute({"run_id": run_id})
    assert containers_of(docker_api, run_id) == []


def test_a_step_that_breaks_its_contract_is_not_retried() -> None:
    with pytest.raises(StepResultError) as failure:
        run_script("print('done, no JSON here')")
    assert "does not end with its JSON result" in str(failure.value)
    assert isinstance(failure.value, AirflowFailException)


def test_the_real_step_cli_exits_permanent_on_a_bad_setting() -> None:
    operator = StepOperator(task_id="probe", step=CHECK, command=[], network_mode="bridge",
                            environment={"S3_ENDPOINT_URL": "ftp://s3:9000"})
    with pytest.raises(AirflowFailException) as failure:
        operator.execute({"run_id": f"test-{uuid.uuid4().hex[:12]}"})
    assert str(failure.value).startswith("error: check_data: S3_ENDPOINT_URL must start with http://")
    assert str(failure.value).endswith("(exit code 3: no retry can fix this)")


class PushedXCom:
    """The one TaskInstance call a skipping step makes."""

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_an_optional_step_that_is_off_skips_without_starting_a_container(docker_api) -> None:
    run_id, ti = f"test-{uuid.uuid4().hex[:12]}", PushedXCom()
    # Were it started, this container would fail the task instead of skipping it.
    operator = StepOperator(task_id="probe", step=CHECK, entrypoint=["python"],
                            command=["-c", "raise SystemExit(9)"], network_mode="bridge",
                            run_when="False", skip_reason="tuning is off")
    with pytest.raises(AirflowSkipException, match="^skipped: tuning is off$"):
        operator.execute({"run_id": run_id, "ti": ti})
    assert ti.pushed == {"reason": "tuning is off"}
    assert containers_of(docker_api, run_id) == []


def test_a_step_with_nothing_to_do_skips_its_task_and_says_why(docker_api) -> None:
    run_id, ti = f"test-{uuid.uuid4().hex[:12]}", PushedXCom()
    script = 'import json; print(json.dumps({"step": "predict", "skip_reason": "no Production model"}))'
    operator = StepOperator(task_id="probe", step=CHECK, entrypoint=["python"],
                            command=["-c", script], network_mode="bridge")
    with pytest.raises(AirflowSkipException, match="^skipped: no Production model$"):
        operator.execute({"run_id": run_id, "ti": ti})
    assert ti.pushed == {"reason": "no Production model"}
    assert containers_of(docker_api, run_id) == []


def test_a_worker_away_from_the_stack_gives_its_steps_the_services_addresses(docker_api, monkeypatch) -> None:
    # make worker sets CT_STEP_EXTRA_HOSTS: its step containers find s3 and mlflow on the
    # stack's host under the same names as on the stack's network.
    monkeypatch.setattr(stack_config, "STEP_EXTRA_HOSTS",
                        stack_config.host_entries("s3:192.0.2.7, mlflow:192.0.2.8"))
    script = ('import json, socket; print(json.dumps({name: socket.gethostbyname(name) '
              'for name in ("s3", "mlflow")}))')
    result, run_id = run_script(script)
    assert result == {"s3": "192.0.2.7", "mlflow": "192.0.2.8"}
    assert containers_of(docker_api, run_id) == []
