"""The same DAG and images on CeleryExecutor workers: `make up EXECUTOR=celery WORKERS=2`.

Two forced runs at once spread their tasks over both workers' hosts and both
register a model; a worker killed in the middle of training is given up on and the
task is retried on the other worker, and the run still succeeds; Flower shows both
workers; `make down` then removes every container, the lost worker's step among
them, and the network.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.scale_out.conftest import CeleryStack, make

# Long enough to stop a worker in the middle of training the default table.
SLOW_TRAINING = {"n_estimators": 40000, "learning_rate": 0.001}


def test_make_up_reports_the_celery_workers_and_flower(celery_stack: CeleryStack) -> None:
    assert "CeleryExecutor, 2 worker(s)" in celery_stack.up_output
    assert len(celery_stack.workers()) == 2


def test_flower_asks_for_a_login_and_shows_both_workers_and_their_queue(celery_stack: CeleryStack) -> None:
    workers = celery_stack.flower_workers()
    assert {name.removeprefix("celery@") for name in workers} == set(celery_stack.workers())
    assert [[queue["name"] for queue in worker["active_queues"]] for worker in workers.values()] == [
        ["default"], ["default"]]
    with pytest.raises(urllib.error.HTTPError) as refused:
        with urllib.request.urlopen(f"{celery_stack.flower_url}/api/workers", timeout=30):
            pass
    assert refused.value.code == 401


def test_two_runs_at_once_spread_over_both_workers_and_both_register(celery_stack: CeleryStack) -> None:
    client = celery_stack.airflow()
    client.wait_for_dag()
    client.wait_until_idle()  # the scheduled run the stack starts with
    runs = [client.trigger({"force": True, "auto_approve": True}) for _ in range(2)]
    celery_stack.runs.extend(runs)
    states = {run_id: client.follow(run_id, timeout=1200) for run_id in runs}
    assert set(states.values()) == {"success"}, states

    hosts = {ti["hostname"] for run_id in runs for ti in client.task_instances(run_id) if ti["hostname"]}
    assert hosts == set(celery_stack.workers()), f"tasks ran on {hosts}"
    for run_id in runs:
        assert client.task_states(run_id)["register"] == "success"
        assert client.xcom(run_id, "register")["version"]


def test_a_worker_stopped_during_training_hands_the_task_to_the_other_and_the_run_succeeds(
    celery_stack: CeleryStack,
) -> None:
    client = celery_stack.airflow()
    client.wait_until_idle()
    run_id = client.trigger({"force": True, "auto_approve": True, "xgb_params": SLOW_TRAINING})
    celery_stack.runs.append(run_id)
    workers = celery_stack.workers()
    training_host = wait_for_running(client, run_id, "train")
    subprocess.run(["docker", "kill", workers[training_host]], check=True, capture_output=True)

    assert client.follow(run_id, timeout=1200) == "success"
    tries = client.tries(run_id, "train")
    assert [t["hostname"] for t in tries][0] == training_host
    assert tries[-1]["state"] == "success"
    assert tries[-1]["hostname"] != training_host and tries[-1]["hostname"] in workers


def wait_for_running(client, run_id: str, task_id: str, timeout: float = 600) -> str:
    """The host of the task's first try once it is running (and its step has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = next(t for t in client.task_instances(run_id) if t["task_id"] == task_id)
        if task["state"] == "running" and task["hostname"]:
            time.sleep(3)  # the step's container is up and training
            return task["hostname"]
        time.sleep(1)
    raise AssertionError(f"{task_id} of {run_id} did not start within {timeout:.0f}s")


def test_make_down_removes_every_container_and_the_network_even_a_lost_workers_step(
    celery_stack: CeleryStack,  # pylint: disable=unused-argument
) -> None:
    project = "com.docker.compose.project=ct-scale-out"
    assert listed("ps", "-a", "-q", "--filter", f"label={project}"), "the stack is not up"
    make("make", "down")
    assert listed("ps", "-a", "-q", "--filter", f"label={project}") == []
    network = "network=ct-scale-out_mlops"
    assert listed("ps", "-a", "-q", "--filter", "label=ct.step", "--filter", network) == []
    assert "ct-scale-out_mlops" not in listed("network", "ls", "--format", "{{.Name}}")
    # Its volumes (runs, models, data) are kept, as for the default stack: make clean removes them.
    assert listed("volume", "ls", "-q", "--filter", f"label={project}")


def listed(*docker_args: str) -> list[str]:
    return subprocess.run(["docker", *docker_args], capture_output=True, text=True, check=True).stdout.split()
