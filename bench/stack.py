"""A stack of a benchmark's own: its compose project, ports and .env, started and removed by the bench.

Shared by bench/runs.py and bench/dag.py. Each bench names its own project and
ports, so it touches neither the developer's stack (8080/5000/9000) nor another
bench's; it uses the built images, as `make up` does (infra/scripts/up.sh).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def load_airflow_client() -> Any:
    """infra/scripts/airflow_client.py, the client `make run` uses."""
    spec = importlib.util.spec_from_file_location("airflow_client", REPO / "infra/scripts/airflow_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max, rounded."""
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "n": len(values)}


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, memory and the date."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cores": os.cpu_count(), "memory_gib": round(pages / 2**30, 1), "date": time.strftime("%Y-%m-%d")}


def describe(host: dict[str, Any]) -> str:
    """The machine in a few words, for the results' prose."""
    return f"{host['cores']} cores, {host['memory_gib']} GiB memory, {host['date']}"


class BenchStack:
    """One compose project with its own ports and .env; `make up`'s script starts it."""

    def __init__(self, project: str, ports: dict[str, int], extra_env: dict[str, str] | None = None) -> None:
        self.env = {
            "COMPOSE_PROJECT_NAME": project, "ENV_FILE": str(REPO / f".env.{project}"),
            "AIRFLOW_PORT": str(ports["airflow"]), "MLFLOW_PORT": str(ports["mlflow"]),
            "S3_PORT": str(ports["s3"]), "S3_CONSOLE_PORT": str(ports["s3_console"]),
            # Nobody answers approval requests here: a pending one would hold every later run.
            "CT_AUTO_APPROVE": "true",
            **(extra_env or {}),
        }
        self.airflow_client = load_airflow_client()

    def sh(self, *args: str, check: bool = True) -> str:
        """Run a command as a user would, with this stack's environment; fail loudly."""
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        done = subprocess.run(list(args), cwd=REPO, env={**env, **self.env}, capture_output=True, text=True,
                              check=False, timeout=1800)
        if check and done.returncode != 0:
            raise SystemExit(f"bench: {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def compose(self, *args: str) -> str:
        """docker compose on this stack; a stack that is not there is fine."""
        return self.sh("bash", "-c", 'source infra/scripts/stack.sh && compose "$@"', "compose", *args,
                       check=False)

    def timed(self, *args: str) -> tuple[float, str]:
        """Seconds a command took, and its output."""
        started = time.monotonic()
        out = self.sh(*args)
        return time.monotonic() - started, out

    def down(self) -> None:
        """Remove the stack, its volumes, its .env (with the choices make up recorded there) and the
        files made from it."""
        self.compose("down", "--volumes", "--remove-orphans")
        Path(self.env["ENV_FILE"]).unlink(missing_ok=True)
        Path(f"{self.env['ENV_FILE']}.settings").unlink(missing_ok=True)
        shutil.rmtree(f"{self.env['ENV_FILE']}.secrets", ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[float]:
        """Up from nothing (yields the seconds `make up` took); always removed after."""
        self.down()
        try:
            seconds, _ = self.timed("infra/scripts/up.sh")
            yield seconds
        finally:
            self.down()

    def secrets(self) -> dict[str, str]:
        """The stack's .env."""
        return self.airflow_client.read_env_file(Path(self.env["ENV_FILE"]))

    def client(self) -> Any:
        """An Airflow REST client logged in as admin."""
        return self.airflow_client.AirflowClient(f"http://localhost:{self.env['AIRFLOW_PORT']}", "admin",
                                                 self.secrets()["AIRFLOW_ADMIN_PASSWORD"])

    def s3(self) -> Any:
        """A boto3 S3 client with the admin keys."""
        import boto3  # pylint: disable=import-outside-toplevel

        env = self.secrets()
        return boto3.client("s3", endpoint_url=f"http://localhost:{self.env['S3_PORT']}",
                            region_name="us-east-1", aws_access_key_id=env["S3_ACCESS_KEY"],
                            aws_secret_access_key=env["S3_SECRET_KEY"])


def write_results(name: str, results: dict[str, Any], markdown: list[str]) -> None:
    """bench/results/<name>.json and <name>.md; the table printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.md").write_text("\n".join(markdown), encoding="utf-8")
    print((RESULTS / f"{name}.md").read_text(encoding="utf-8"))


def bench_alone(stack: BenchStack, collect: Callable[[BenchStack, float], dict[str, Any]],
                finish: Callable[[dict[str, Any]], int]) -> int:
    """A bench on a stack of its own: up, ``collect``, down, then ``finish`` (write; the exit code)."""
    with stack.running() as up_seconds:
        results = collect(stack, up_seconds)
    return finish(results)
