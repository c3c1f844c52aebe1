#!/usr/bin/env python3
"""Trigger a DAG through Airflow's REST API, follow it, and say in one line what happened.

`make run`, `make follow`, `make approve`, `make reject`, `make rollback` and
`make score` call this; the stack tests use the same client. Standard library
only (its HTTP and Airflow login are the steps' own, `pipeline_steps.services.rest` and
`pipeline_steps.services.airflow_api`, which need nothing else), so it runs with any python3
on the host. The last line printed is the
run's outcome: registered (which version, and the gate's numbers) and waiting
for approval, promoted or kept out of Production, stopped at the gate and why,
skipped because nothing is new, rolled back, or failed and where. Exit code 0
only when the run succeeded or waits for a person (a skip or a gate stop is a
success).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script: the package beside it
# pylint: disable=wrong-import-position
from pipeline_steps import pipeline
from pipeline_steps.errors import NotFoundError, PipelineError
from pipeline_steps.pipeline import APPROVAL_TASK, GATE_TASK, KEEP_TASK, REASON_KEY, STOP_TASK
from pipeline_steps.services.airflow_api import token
from pipeline_steps.services.rest import call_json
from pipeline_steps.settings import AirflowApiSettings, read_env_file

DAG_ID = pipeline.TRAINING_DAG
ROLLBACK_DAG_ID = pipeline.ROLLBACK_DAG
SCORING_DAG_ID = pipeline.SCORING_DAG
MONITOR_DAG_ID = pipeline.MONITOR_DAG
REGISTER_TASK, PROMOTE_TASK = pipeline.step("register").name, pipeline.step("promote").name
FINISHED = {"success", "failed"}
AWAITING = "awaiting_input"  # a human-in-the-loop task waiting for a person's answer
QUEUED_BEHIND = "queued_behind_approval"  # queued (one run at a time) behind a run that waits for a person
PARK_SETTLE_SECONDS = 10  # see AirflowClient.answer_approval
QUEUED_CHECK_SECONDS = 5  # how often a queued run being followed looks for an approval ahead of it
# States of a try that ran and did not succeed (upstream_failed tasks never ran).
FAILED_TRY_STATES = {"failed", "up_for_retry"}
TIMEOUT_SECONDS = 60


def format_log_event(event: Any) -> str:
    """One structured Airflow log event as one readable line."""
    if not isinstance(event, dict):
        return str(event)
    fields = dict(event)
    parts = [str(fields.pop(key)) for key in ("timestamp", "level", "event") if fields.get(key) is not None]
    for key in ("logger", "chan", "sources", "filename", "lineno"):
        fields.pop(key, None)
    extra = " ".join(f"{key}={value}" for key, value in fields.items())
    return " ".join(parts + ([extra] if extra else []))


class AirflowClient:  # pylint: disable=too-many-public-methods  # one method per REST call
    """The few REST calls of Airflow 3's public API that a run needs."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token(AirflowApiSettings(self.base_url, username, password))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """An authenticated API call; errors say what failed (NotFoundError for a 404)."""
        return call_json("Airflow", self.base_url, method, f"/api/v2{path}", body=body, token=self.token,
                         timeout=TIMEOUT_SECONDS)

    @staticmethod
    def _run_path(run_id: str, dag_id: str = DAG_ID) -> str:
        return f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def wait_for_dag(self, dag_id: str = DAG_ID, timeout: float = 300) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it, unpaused."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                dag = self.call("GET", f"/dags/{dag_id}")
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)
        if dag.get("is_paused"):
            dag = self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        return dag

    def runs(self, dag_id: str = DAG_ID, **filters: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first (filters: state, run_type...)."""
        query = urllib.parse.urlencode({"order_by": "run_after", "limit": 100, **filters})
        return self.call("GET", f"/dags/{dag_id}/dagRuns?{query}")["dag_runs"]

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        """One run."""
        return self.call("GET", self._run_path(run_id, dag_id))

    def wait_until_idle(self, dag_id: str = DAG_ID, timeout: float = 1800) -> None:
        """Wait for queued and running runs (e.g. the scheduled one) to end."""
        deadline = time.monotonic() + timeout
        while self.call("GET", f"/dags/{dag_id}/dagRuns?state=queued&state=running")["total_entries"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} still has active runs after {timeout:.0f}s")
            time.sleep(2)

    def first_run_since(self, since: str, dag_id: str = DAG_ID, timeout: float = 60) -> str:
        """The first run queued at or after ``since`` (ISO UTC), waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [run for run in self.runs(dag_id) if (run.get("queued_at") or "") >= since]
            if runs:
                return runs[0]["dag_run_id"]
            if time.monotonic() > deadline:
                raise PipelineError(f"no {dag_id} run started since {since} (after {timeout:.0f}s)")
            time.sleep(1)

    def latest_run_id(self, dag_id: str = DAG_ID) -> str:
        """The active run's id (the one `make publish` just started, say), else the newest run's."""
        newest = f"/dags/{dag_id}/dagRuns?order_by=-run_after&limit=1"
        runs = (self.call("GET", f"{newest}&state=queued&state=running")["dag_runs"]
                or self.call("GET", newest)["dag_runs"])
        if not runs:
            raise PipelineError(f"{dag_id} has no run yet")
        return runs[0]["dag_run_id"]

    def trigger(self, conf: dict[str, Any], dag_id: str = DAG_ID) -> str:
        """Start a manual run; return its run id."""
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        """The run's task instances (task_id, state, try_number...)."""
        return self.call("GET", f"{self._run_path(run_id, dag_id)}/taskInstances")["task_instances"]

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str | None]:
        """Each task's state in a run."""
        return {t["task_id"]: t["state"] for t in self.task_instances(run_id, dag_id)}

    def set_task_state(self, run_id: str, task_id: str, state: str, dag_id: str = DAG_ID) -> Any:
        """Mark a task instance, as a person does in the UI."""
        path = f"{self._run_path(run_id, dag_id)}/taskInstances/{task_id}"
        return self.call("PATCH", path, {"new_state": state})

    def tries(self, run_id: str, task_id: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        """Every try of a task in a run, the finished ones and the current one."""
        path = f"{self._run_path(run_id, dag_id)}/taskInstances/{task_id}/tries"
        return self.call("GET", path)["task_instances"]

    def try_log_events(self, run_id: str, task_id: str, try_number: int,
                       dag_id: str = DAG_ID) -> list[Any]:
        """Every log event of one try of a task."""
        path = (f"{self._run_path(run_id, dag_id)}/taskInstances/{task_id}/logs/{try_number}"
                "?full_content=true")
        body = self.call("GET", path)
        content = body.get("content") if isinstance(body, dict) else body
        return content.splitlines() if isinstance(content, str) else list(content or [])

    def try_log(self, run_id: str, task_id: str, try_number: int, dag_id: str = DAG_ID) -> str:
        """The whole log of one try of a task, a line per event."""
        events = self.try_log_events(run_id, task_id, try_number, dag_id)
        return "\n".join(format_log_event(event) for event in events)

    def xcom(self, run_id: str, task_id: str, key: str = "return_value", dag_id: str = DAG_ID) -> Any:
        """A task's XCom value in a run, or None when it has none."""
        path = f"{self._run_path(run_id, dag_id)}/taskInstances/{task_id}/xcomEntries/{key}"
        try:
            value = self.call("GET", f"{path}?deserialize=true")["value"]
        except NotFoundError:
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def failed_tries(self, run_id: str, dag_id: str = DAG_ID) -> list[tuple[str, int, str]]:
        """(task, try number, state) of every try in the run that did not succeed."""
        found = []
        for instance in self.task_instances(run_id, dag_id):
            if instance["state"] not in FAILED_TRY_STATES and (instance.get("try_number") or 0) <= 1:
                continue
            for attempt in self.tries(run_id, instance["task_id"], dag_id):
                if attempt.get("state") in FAILED_TRY_STATES:
                    found.append((instance["task_id"], attempt["try_number"], attempt["state"]))
        return found

    def failure_evidence(self, run_id: str, dag_id: str = DAG_ID) -> str:
        """The whole log of every failed try of the run: what the next person needs to see."""
        sections = []
        for task_id, try_number, state in self.failed_tries(run_id, dag_id):
            log = self.try_log(run_id, task_id, try_number, dag_id)
            sections.append(f"===== {task_id} try {try_number} ({state}): whole log =====\n{log}")
        return "\n".join(sections)

    def error_line(self, run_id: str, task_id: str, dag_id: str = DAG_ID) -> str:
        """Why the task's last try failed: its exception, else a step's `error: ...` line."""
        tries = self.tries(run_id, task_id, dag_id)
        if not tries:
            return "it never ran"
        events = self.try_log_events(run_id, task_id, max(t["try_number"] for t in tries), dag_id)
        for event in reversed(events):
            details = event.get("error_detail") if isinstance(event, dict) else None
            if details:
                return str(details[-1].get("exc_value"))
        lines = [format_log_event(event) for event in events]
        errors = [line[line.index("error: "):] for line in lines if "error: " in line]
        return errors[-1] if errors else "its log records no error (was it marked failed from outside?)"

    def outcome(self, run_id: str, dag_id: str = DAG_ID) -> str:
        """What the run did, in one line."""
        states = self.task_states(run_id, dag_id)
        said = (self._training_outcome(run_id, states) if dag_id == DAG_ID
                else self._step_outcome(run_id, states, dag_id))
        if said:
            return said
        failed = [task for task, state in states.items() if state == "failed"]
        if failed:
            lost = ", nothing registered" if dag_id == DAG_ID else ""
            return f"failed at {failed[0]}{lost}: {self.error_line(run_id, failed[0], dag_id)}"
        return f"run ended {self.run(run_id, dag_id)['state']}"

    def _step_outcome(self, run_id: str, states: dict[str, str | None], dag_id: str) -> str | None:
        """A DAG of steps alone (rollback, scoring, monitoring): the first step's message, or why it was
        skipped; then what each later step did (its message), when it did something."""
        first, *later = pipeline.of_dag(dag_id)
        if states.get(first.name) == "skipped":
            return f"{first.skipped}: {self.xcom(run_id, first.name, REASON_KEY, dag_id)}"
        if states.get(first.name) != "success" or any(states.get(step.name) == "failed" for step in later):
            return None
        said = [str((self.xcom(run_id, first.name, dag_id=dag_id) or {}).get("message", "done"))]
        for step in later:
            if states.get(step.name) == "success":
                said.append(str((self.xcom(run_id, step.name, dag_id=dag_id) or {}).get("message",
                                                                                       f"{step.name} done")))
            elif states.get(step.name) == "skipped" and (reason := self.xcom(run_id, step.name, REASON_KEY,
                                                                              dag_id)):
                said.append(f"{step.skipped}: {reason}")  # it ran and found nothing to do
        return "; ".join(said)

    def _training_outcome(self, run_id: str, states: dict[str, str | None]) -> str | None:
        """Registered (and what became of it), stopped at the gate, or skipped; None otherwise."""
        if states.get(REGISTER_TASK) == "success":
            registered = self.xcom(run_id, REGISTER_TASK) or {}
            reason = self.xcom(run_id, GATE_TASK, REASON_KEY)
            done = (f"registered {registered.get('model_name')} version {registered.get('version')} "
                    f"as {registered.get('alias')}: {reason}")
            return f"{done}; {self.promotion_outcome(run_id, states)}"
        if states.get(STOP_TASK) == "success":
            reason = self.xcom(run_id, GATE_TASK, REASON_KEY)
            return f"stopped at the quality gate, nothing registered: {reason}"
        # The first step whose skip ended the run (the check found nothing new, drift stopped it).
        for step in pipeline.of_dag(DAG_ID):
            if step.skipped and states.get(step.name) == "skipped":
                return f"{step.skipped}: {self.xcom(run_id, step.name, REASON_KEY)}"
        return None

    def promotion_outcome(self, run_id: str, states: dict[str, str | None], dag_id: str = DAG_ID) -> str:
        """What became of a registered version: waiting for a person, promoted, or kept out."""
        if states.get(APPROVAL_TASK) == AWAITING:
            return (f"waiting for approval: Approve or Reject it in the Airflow UI ({self.base_url}/dags/"
                    f"{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}/tasks/{APPROVAL_TASK}"
                    "/required_actions) or with make approve / make reject")
        if states.get(PROMOTE_TASK) == "success":
            return (self.xcom(run_id, PROMOTE_TASK, dag_id=dag_id) or {}).get("message", "promoted")
        if states.get(KEEP_TASK) == "success":
            return str(self.xcom(run_id, KEEP_TASK, REASON_KEY, dag_id))
        return f"promotion {states.get(APPROVAL_TASK)}"

    def pending_approvals(self, dag_id: str = DAG_ID) -> list[str]:
        """Runs whose promotion waits for a person's answer, oldest first."""
        return [run["dag_run_id"] for run in self.runs(dag_id, state="running")
                if self.task_states(run["dag_run_id"], dag_id).get(APPROVAL_TASK) == AWAITING]

    def answer_approval(self, run_id: str, option: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        """Approve or Reject a run's pending promotion, as a person does in Required actions.

        Not within PARK_SETTLE_SECONDS of the task's start: in Airflow 3.3.2 an answer that
        arrives before the scheduler has handled the exit of the process that parked the
        task (awaiting_input) gets the resumed task failed ("state changed externally",
        seen once in CI when the answer came 0.6 s after parking). A person in the UI is
        never that fast; a script is.
        """
        instance = self.call("GET", f"{self._run_path(run_id, dag_id)}/taskInstances/{APPROVAL_TASK}")
        if instance.get("start_date"):
            started = dt.datetime.fromisoformat(instance["start_date"].replace("Z", "+00:00"))
            parked_for = (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
            time.sleep(max(0.0, PARK_SETTLE_SECONDS - parked_for))
        path = f"{self._run_path(run_id, dag_id)}/taskInstances/{APPROVAL_TASK}/-1/hitlDetails"
        return self.call("PATCH", path, {"chosen_options": [option], "params_input": {}})

    def follow(self, run_id: str, dag_id: str = DAG_ID, timeout: float = 1800,
               out: Any = sys.stdout) -> str:
        """Print each task's state changes until the run ends or waits for a person; return that state.

        A person is also what a queued run waits for when the run ahead of it (the DAG runs
        one at a time) waits for an answer: that returns QUEUED_BEHIND, at whatever moment
        the run ahead starts waiting, instead of following a run that cannot start.
        """
        seen: dict[str, str | None] = {}
        started = time.monotonic()
        checked_ahead = -math.inf
        while True:
            state = self.run(run_id, dag_id)["state"]
            if state == "queued" and time.monotonic() - checked_ahead >= QUEUED_CHECK_SECONDS:
                checked_ahead = time.monotonic()
                if self.pending_approvals(dag_id):
                    return QUEUED_BEHIND
            for task, task_state in self.task_states(run_id, dag_id).items():
                if seen.get(task) != task_state:
                    seen[task] = task_state
                    print(f"[{time.monotonic() - started:6.0f}s] {task}: {task_state}", file=out, flush=True)
            if state in FINISHED:
                return state
            if AWAITING in seen.values():
                return AWAITING
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(1)


def main() -> int:
    """make run / follow / approve / reject / rollback / monitor: act, follow the run, end with the outcome.

    Exits non-zero unless the run succeeded or waits for a person.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default="{}", help='run parameters as JSON, e.g. \'{"force": true}\'')
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--follow-latest", action="store_true",
                        help="trigger nothing: follow the newest run (make follow)")
    action.add_argument("--answer", choices=["Approve", "Reject"],
                        help="answer the pending promotion request (make approve / make reject)")
    action.add_argument("--rollback", action="store_true",
                        help=f"trigger {ROLLBACK_DAG_ID} (make rollback)")
    action.add_argument("--monitor", action="store_true",
                        help=f"trigger {MONITOR_DAG_ID} (make monitor)")
    action.add_argument("--follow-scoring-since", metavar="ISO_TIME",
                        help=f"follow the first {SCORING_DAG_ID} run queued since then (make score)")
    parser.add_argument("--env-file", default=os.environ.get("ENV_FILE") or
                        str(Path(__file__).resolve().parents[2] / ".env"))
    args = parser.parse_args()
    try:
        conf = json.loads(args.conf)
        env = read_env_file(Path(args.env_file))
        url = f"http://localhost:{os.environ.get('AIRFLOW_PORT', env.get('AIRFLOW_PORT', '8080'))}"
        client = AirflowClient(url, "admin", env["AIRFLOW_ADMIN_PASSWORD"])
        dag_id = (ROLLBACK_DAG_ID if args.rollback else MONITOR_DAG_ID if args.monitor
                  else SCORING_DAG_ID if args.follow_scoring_since else DAG_ID)
        client.wait_for_dag(dag_id)
        if args.answer:
            pending = client.pending_approvals()
            if not pending:
                raise PipelineError("no promotion is waiting for an answer")
            run_id = pending[-1]
            client.answer_approval(run_id, args.answer)
            print(f"answered {args.answer} for {DAG_ID} run {run_id}", flush=True)
        elif args.follow_latest or args.follow_scoring_since:
            run_id = (client.first_run_since(args.follow_scoring_since, dag_id)
                      if args.follow_scoring_since else client.latest_run_id())
            print(f"following {dag_id} run {run_id} (UI: {url}/dags/{dag_id})", flush=True)
        else:
            run_id = client.trigger(conf, dag_id)
            print(f"triggered {dag_id} run {run_id} (UI: {url}/dags/{dag_id})", flush=True)
        if args.answer:  # the answer resumes the task: wait until it has left the awaiting state
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while client.task_states(run_id).get(APPROVAL_TASK) == AWAITING and time.monotonic() < deadline:
                time.sleep(1)
        state = client.follow(run_id, dag_id)
        if state == QUEUED_BEHIND:  # following would block until a person answers: say so and end
            ahead = client.pending_approvals(dag_id)
            print(f"{dag_id}: run {run_id} is queued behind run {ahead[-1] if ahead else 'another run'}, "
                  "which waits for an answer to its promotion request: make approve / make reject "
                  "(or the Airflow UI), then make follow", flush=True)
            return 0
        if state not in ("success", AWAITING):
            for task_id, try_number, _ in client.failed_tries(run_id, dag_id):
                log = client.try_log(run_id, task_id, try_number, dag_id).splitlines()
                print(f"--- {task_id} try {try_number}, last lines of its log ---", flush=True)
                print("\n".join(log[-30:]), flush=True)
        print(f"{dag_id}: {client.outcome(run_id, dag_id)}", flush=True)
        return 0 if state in ("success", AWAITING) else 1
    except FileNotFoundError:
        print(f"error: run: {args.env_file} not found: start the stack first (make up)", file=sys.stderr)
        return 2
    except (PipelineError, OSError, KeyError, json.JSONDecodeError, TimeoutError) as exc:
        print(f"error: run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
