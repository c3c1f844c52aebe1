#!/usr/bin/env python3
"""Trigger the training DAG through Airflow's REST API and follow it task by task.

`make run` calls this; the stack tests use the same functions. Standard library
only, so it runs with any python3 on the host. Exit code 0 only when the run
succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DAG_ID = "ml_training_pipeline"
FINISHED = {"success", "failed"}


class AirflowClient:
    """The few REST calls of Airflow 3's public API that a run needs."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        body = self._request("POST", "/auth/token", {"username": username, "password": password})
        self.token = body["access_token"]

    def _request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace")
            raise RuntimeError(f"Airflow {method} {path}: HTTP {exc.code} {detail}") from None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """An authenticated API call."""
        return self._request(method, f"/api/v2{path}", body, self.token)

    def wait_for_dag(self, dag_id: str = DAG_ID, timeout: float = 300) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it, unpaused."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                dag = self.call("GET", f"/dags/{dag_id}")
                break
            except RuntimeError as exc:
                if "HTTP 404" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(5)
        if dag.get("is_paused"):
            dag = self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        return dag

    def wait_until_idle(self, dag_id: str = DAG_ID, timeout: float = 1800) -> None:
        """Wait for queued and running runs (e.g. the scheduled one) to end."""
        deadline = time.monotonic() + timeout
        while self.call("GET", f"/dags/{dag_id}/dagRuns?state=queued&state=running")["total_entries"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} still has active runs after {timeout:.0f}s")
            time.sleep(5)

    def trigger(self, conf: dict[str, Any], dag_id: str = DAG_ID) -> str:
        """Start a manual run; return its run id."""
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str | None]:
        """Each task's state in a run."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return {t["task_id"]: t["state"] for t in self.call("GET", path)["task_instances"]}

    def task_log(self, run_id: str, task_id: str, dag_id: str = DAG_ID, lines: int = 25) -> str:
        """The last lines of a task's latest try, as its log events."""
        run = urllib.parse.quote(run_id, safe="")
        instance = self.call("GET", f"/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}")
        body = self.call("GET", f"/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}"
                                f"/logs/{max(instance.get('try_number') or 1, 1)}")
        content = body.get("content") if isinstance(body, dict) else body
        events = [e.get("event", str(e)) if isinstance(e, dict) else str(e) for e in content or []]
        return "\n".join(str(e) for e in events[-lines:])

    def follow(self, run_id: str, dag_id: str = DAG_ID, timeout: float = 1800,
               out: Any = sys.stdout) -> str:
        """Print each task's state changes until the run ends; return the run's final state."""
        seen: dict[str, str | None] = {}
        started = time.monotonic()
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        while True:
            state = self.call("GET", path)["state"]
            for task, task_state in self.task_states(run_id, dag_id).items():
                if seen.get(task) != task_state:
                    seen[task] = task_state
                    print(f"[{time.monotonic() - started:6.0f}s] {task}: {task_state}", file=out, flush=True)
            if state in FINISHED:
                for task in (t for t, s in seen.items() if s == "failed"):
                    print(f"--- log of {task} (last lines) ---\n{self.task_log(run_id, task, dag_id)}",
                          file=out, flush=True)
                print(f"run {run_id}: {state}", file=out, flush=True)
                return state
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(3)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of the stack's .env."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def main() -> int:
    """make run: trigger, follow, exit non-zero unless the run succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default="{}", help='run parameters as JSON, e.g. \'{"force": true}\'')
    parser.add_argument("--env-file", default=str(Path(__file__).resolve().parents[2] / ".env"))
    args = parser.parse_args()
    env = read_env_file(Path(args.env_file))
    url = f"http://localhost:{os.environ.get('AIRFLOW_PORT', env.get('AIRFLOW_PORT', '8080'))}"
    try:
        client = AirflowClient(url, "admin", env["AIRFLOW_ADMIN_PASSWORD"])
        client.wait_for_dag()
        run_id = client.trigger(json.loads(args.conf))
        print(f"triggered {DAG_ID} run {run_id} (UI: {url}/dags/{DAG_ID})", flush=True)
        return 0 if client.follow(run_id) == "success" else 1
    except (RuntimeError, OSError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
