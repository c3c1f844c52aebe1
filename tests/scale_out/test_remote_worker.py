"""A Celery worker on another host: `make worker MAIN_HOST=...` for a stack started with WORKER_ADDRESS.

The "other host" is a second compose project on this machine, with networks of its own and
the stack's .env: it reaches the stack only through the ports the stack publishes on the
Docker bridge's address (a LAN address between two machines). The stack's own worker serves
the default queue; the other host's serves only the heavy queue (CT_HEAVY_QUEUE), so a forced
run succeeds only if train and evaluate ran over there, their step containers finding S3 and
MLflow on the stack's host under their usual names.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline_steps.pipeline import STEPS
from tests.scale_out.conftest import CeleryStack, celery_stack_up, make, running_hostnames
from tests.stack.conftest import REPO, compose

# The address the other host reaches this one at: the default bridge's gateway.
BRIDGE_ADDRESS = subprocess.run(
    ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
    capture_output=True, text=True, check=False).stdout.strip() or "172.17.0.1"
# On 127.0.0.1 (what this machine's browser uses): ports of its own, beside any other stack.
STACK_ENV = {
    "COMPOSE_PROJECT_NAME": "ct-remote", "ENV_FILE": str(REPO / ".env.remote"),
    "AIRFLOW_PORT": "38080", "MLFLOW_PORT": "35000", "S3_PORT": "39000",
    "S3_CONSOLE_PORT": "39001", "FLOWER_PORT": "35555", "WAIT_SECONDS": "900",
    "EXECUTOR": "celery", "WORKERS": "1", "WORKER_ADDRESS": BRIDGE_ADDRESS,
    "CT_HEAVY_QUEUE": "heavy", "CT_WORKER_QUEUES": "default", "CT_AUTO_APPROVE": "true",
    "CT_STEP_RETRY_DELAY_SECONDS": "5",
}
# The other host: its own project and network, and the stack's .env (copied there).
WORKER_ENV = {
    "COMPOSE_PROJECT_NAME": "ct-remote-worker", "ENV_FILE": STACK_ENV["ENV_FILE"],
    "MAIN_HOST": BRIDGE_ADDRESS, "QUEUES": "heavy",
}
HEAVY_TASKS = {"tune", "train", "evaluate"}


@dataclass
class RemoteStack(CeleryStack):
    """The stack, and the worker make worker started on the other host."""

    worker_output: str = ""
    worker_env: dict[str, str] = field(default_factory=lambda: WORKER_ENV)

    def remote_workers(self) -> dict[str, str]:
        """The other host's running workers: hostname -> container id."""
        ids = compose("ps", "-q", "airflow-worker", stack_env={**self.worker_env, "EXECUTOR": "celery"},
                      check=False).stdout.split()
        return running_hostnames(ids)

    def evidence(self) -> str:
        """The stack's evidence, and the other host's worker: its last lines and its task logs
        (the stack's UI cannot fetch those from another host)."""
        sections = [super().evidence(), "##### the other host's worker"]
        for container in self.remote_workers().values():
            for command in (["docker", "logs", "--tail=200", container],
                            ["docker", "exec", container, "sh", "-c",
                             "for log in $(find /opt/airflow/logs -name '*.log'); do "
                             "echo \"=== $log\"; cat \"$log\"; done"]):
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                sections.append(done.stdout + done.stderr)
        return "\n".join(sections)


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[RemoteStack]:
    """The stack with WORKER_ADDRESS, then make worker on the other host; both removed at the end."""
    make("make", "worker-down", check=False, stack_env=WORKER_ENV)
    with celery_stack_up(STACK_ENV, "remote-worker-logs.txt") as stack:
        try:
            worker = make("make", "worker", stack_env=WORKER_ENV)
            yield RemoteStack(env=stack.env, up_output=stack.up_output, stack_env=STACK_ENV,
                              worker_output=worker.stdout + worker.stderr)
        finally:
            make("infra/scripts/worker.sh", "--volumes", check=False,
                 stack_env={**WORKER_ENV, "ACTION": "down"})


def published(stack: CeleryStack, service: str, port: int) -> set[str]:
    """Where the host publishes a service's port: address:port, one per binding."""
    (container,) = stack.compose("ps", "-q", service).stdout.split()
    done = subprocess.run(["docker", "port", container, f"{port}/tcp"],
                          capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_make_up_publishes_the_five_services_workers_reach_at_their_own_ports(celery_stack) -> None:
    assert f"published on {BRIDGE_ADDRESS}" in celery_stack.up_output
    services = (("postgres", 5432), ("redis", 6379), ("airflow-apiserver", 8080), ("s3", 9000),
                ("mlflow", 5000))
    assert {service: published(celery_stack, service, port) for service, port in services} == {
        "postgres": {f"{BRIDGE_ADDRESS}:5432"}, "redis": {f"{BRIDGE_ADDRESS}:6379"},
        "airflow-apiserver": {f"{BRIDGE_ADDRESS}:8080", "127.0.0.1:38080"},
        "s3": {f"{BRIDGE_ADDRESS}:9000", "127.0.0.1:39000"},
        "mlflow": {f"{BRIDGE_ADDRESS}:5000", "127.0.0.1:35000"},
    }


def test_the_other_hosts_worker_shares_no_network_with_the_stack(celery_stack) -> None:
    (hostname, container), = celery_stack.remote_workers().items()
    assert f"celery@{hostname}" in celery_stack.worker_output
    networks = subprocess.run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container],
                              capture_output=True, text=True, check=True).stdout
    assert set(json.loads(networks)) == {"ct-remote-worker_mlops", "ct-remote-worker_docker-api"}
    hosts = subprocess.run(["docker", "exec", container, "getent", "hosts", "postgres", "mlflow"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert hosts == [BRIDGE_ADDRESS, "postgres", BRIDGE_ADDRESS, "mlflow"]


def test_flower_on_the_stack_lists_the_other_hosts_worker_on_the_heavy_queue(celery_stack) -> None:
    workers = celery_stack.flower_workers()
    queues = {name.removeprefix("celery@"): [queue["name"] for queue in worker["active_queues"]]
              for name, worker in workers.items()}
    (local,), (remote,) = celery_stack.workers(), celery_stack.remote_workers()
    assert queues == {local: ["default"], remote: ["heavy"]}


def test_a_run_trains_and_evaluates_on_the_other_host_and_registers(celery_stack) -> None:
    client = celery_stack.airflow()
    client.wait_for_dag()
    client.wait_until_idle()  # the scheduled run the stack starts with
    run_id = client.trigger({"force": True, "auto_approve": True})
    celery_stack.runs.append(run_id)
    assert client.follow(run_id, timeout=1200) == "success"

    (local,), (remote,) = celery_stack.workers(), celery_stack.remote_workers()
    hosts = {ti["task_id"]: ti["hostname"] for ti in client.task_instances(run_id) if ti["hostname"]}
    assert {task for task, host in hosts.items() if host == remote} == HEAVY_TASKS & set(hosts)
    assert {"train", "evaluate"} <= set(hosts)
    assert {host for task, host in hosts.items() if task not in HEAVY_TASKS} == {local}
    assert client.task_states(run_id)["register"] == "success"


@pytest.mark.usefixtures("celery_stack")
def test_make_worker_names_what_it_cannot_reach_and_starts_nothing() -> None:
    # An address nothing answers at (TEST-NET-1): every connection times out.
    worker_env = {**WORKER_ENV, "COMPOSE_PROJECT_NAME": "ct-remote-refused", "MAIN_HOST": "192.0.2.1"}
    refused = make("make", "worker", check=False, stack_env=worker_env)
    assert refused.returncode != 0
    assert ("error: cannot reach the stack at 192.0.2.1: postgres:5432 redis:6379 airflow-api:8080 s3:9000 "
            "mlflow:5000 (is it up with WORKER_ADDRESS=192.0.2.1") in refused.stderr
    assert compose("ps", "-q", stack_env={**worker_env, "EXECUTOR": "celery"}).stdout.strip() == ""


def test_make_up_refuses_an_address_workers_cannot_use(celery_stack) -> None:
    for address, why in (("0.0.0.0", "not a loopback or wildcard one"),
                         ("192.0.2.1", "is not an address of this host")):
        refused = make("make", "up", check=False, stack_env={**STACK_ENV, "WORKER_ADDRESS": address})
        assert refused.returncode != 0 and why in refused.stderr, refused.stderr
    # The running stack was not touched.
    assert len(celery_stack.workers()) == 1
    assert published(celery_stack, "postgres", 5432) == {f"{BRIDGE_ADDRESS}:5432"}


def test_make_save_images_writes_one_archive_that_docker_loads(celery_stack, tmp_path: Path) -> None:
    archive = tmp_path / "ct-images.tar"
    make("make", "save-images", f"ARCHIVE={archive}")
    with tarfile.open(archive) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))
    # The stack runs its images at the commit's tag: the archive holds that tag of each.
    (worker,) = celery_stack.workers().values()
    tag = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", worker],
                         capture_output=True, text=True, check=True).stdout.strip().split(":")[1]
    tags = {repo_tag for image in manifest for repo_tag in image["RepoTags"]}
    tasks = [step.image for step in STEPS if step.lock and not step.service]
    assert tags == {f"ct-{name}:{tag}" for name in ("airflow", "docker-proxy", *tasks)}
    assert "monitor-production" in tasks and "model-server" not in tasks
    loaded = subprocess.run(["docker", "load", "-i", str(archive)],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert sorted(line.removeprefix("Loaded image: ") for line in loaded) == sorted(tags)
