"""Fixtures for the image tests: real Docker, the `:latest` images `make build-images` built."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

STEP_MODULES = {
    "check-data": "check_data",
    "prepare": "prepare",
    "train": "train",
    "evaluate": "evaluate",
    "register": "register",
    "publish": "publish_data",
}
SERVICES = ("airflow", "mlflow", "seaweedfs", "postgres")
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
