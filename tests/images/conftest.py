"""Fixtures for the image tests: real Docker, the `:latest` images `make build-images` built."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from pipeline_steps import pipeline

# Every step image, by image name: its step's name (pipeline_steps/pipeline.py).
STEP_MODULES = {step.image: step.name for step in pipeline.STEPS if step.lock}
SERVICES = ("airflow", "mlflow", "seaweedfs", "postgres", "docker-proxy")
ALL_IMAGES = (*STEP_MODULES, *SERVICES)

Docker = Callable[..., subprocess.CompletedProcess[str]]


def ref(name: str) -> str:
    """The image reference the tests use."""
    return f"ct-{name}:latest"


@pytest.fixture(scope="session")
def docker() -> Docker:
    """Run `docker ARGS...`; fails the session (never skips) when no daemon answers."""
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except FileNotFoundError:
        pytest.fail("docker is not installed: run `make docker-ready` (as root), then `make build-images`")
    if info.returncode != 0:
        pytest.fail(f"the Docker daemon does not answer ({info.stderr.strip()}): run `make docker-ready`")

    def run(*args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"`docker {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    return run


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Poll ``check`` every second; fail the test, naming ``what``, when it stays false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def container(docker: Docker) -> Iterator[Callable[..., str]]:  # pylint: disable=redefined-outer-name
    """Start detached containers (`docker run -d ARGS`) that are removed after the test."""
    started: list[str] = []

    def start(*args: str) -> str:
        name = f"ct-test-{uuid.uuid4().hex[:8]}"
        docker("run", "-d", "--name", name, *args)
        started.append(name)
        return name

    yield start
    for name in started:
        docker("rm", "-f", "-v", name, check=False)
