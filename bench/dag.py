#!/usr/bin/env python3
"""Orchestration overhead: where the seconds of a training run go besides the steps' own work.

Starts a stack of its own (project ct-benchdag, its own ports, .env.ct-benchdag)
from the built images, waits for the first scheduled run to end, then triggers
BENCH_DAG_RUNS forced runs (`{"force": true}`: the whole check, prepare, drift,
train, evaluate, register and promote work on the default data) one after the
other, and splits each run's wall time (its start to its end in Airflow) into:

- scheduling: from the previous task's end (or the run's start) to a task being
  queued, from queued to started, and from the last task's end to the run's end
  (Airflow's REST API: the task instances' queued_when, start_date, end_date);
- task runner: from a task's start to its container being created and from the
  container's exit to the task's end, and the whole of tasks that start no container
  (the gate, the approval, a skipped step): Airflow's task process and the operator;
- container start and exit: from `docker create` to the step's process starting, and
  from the step's result to the container's exit (`docker events` of the containers
  labelled ct.step, recorded while the runs go);
- interpreter and imports, and the step's work: from the step's process start to its
  modules being imported, and from there to its result (the `ct.timing` line each
  step logs, pipeline_steps/cli.py, read from the task log).

Overhead is wall time minus step work. Target (issue #12): under 10 s for the
five-step run on the default data. Writes bench/results/dag.json and dag.md.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from stack import RESULTS, BenchStack, bench_alone, describe, machine, write_results

STACK = BenchStack("ct-benchdag", {"airflow": 38080, "mlflow": 35000, "s3": 39000, "s3_console": 39001})
RUNS = int(os.environ.get("BENCH_DAG_RUNS", "5"))
TARGET_SECONDS = 10.0
TIMING = re.compile(r"ct\.timing (\{[^{}]*\})")
# The parts of a task's time, in the order they happen; the run's parts add up to its wall time.
PARTS = ("scheduling", "queued", "runner_before", "container_start", "imports", "work",
         "container_exit", "runner_after", "runner_only")
PART_NAMES = {
    "scheduling": "upstream end → queued", "queued": "queued → started",
    "runner_before": "task start → container created", "container_start": "container created → process",
    "imports": "interpreter + imports", "work": "step work", "container_exit": "result → container exit",
    "runner_after": "container exit → task end", "runner_only": "task without container",
}
# What each part is spent in, for the run's overhead.
GROUPS = {
    "scheduling (Airflow scheduler)": ("scheduling", "queued", "tail"),
    "task runner (Airflow task process, operator)": ("runner_before", "runner_after", "runner_only"),
    "container start and exit (Docker)": ("container_start", "container_exit"),
    "interpreter and imports (Python)": ("imports",),
}

# What dominated and what was done about it: kept by hand, measured with this bench.
FINDINGS = [
    "## What dominates, and what was done (2026-11-24, 2 cores; the first figures while image builds "
    "also ran: load 5-7)", "",
    "Before (the steps and Airflow settings of c7e26ba), median of 5 runs: wall 93.0, step work 43.2, "
    "overhead 49.9. Three parts were cut, each measured by this bench:", "",
    "- **Interpreter teardown**, from a step's result to its container's exit: 0.4-1.4 s per step, "
    "7.5 per run, Python finalising pandas, scikit-learn and MLflow in a process about to be removed. "
    "The steps now end with `pipeline_steps.cli.exit_process` (flush, then `os._exit`): 0.6 per run.",
    "- **Scheduler idle sleep**, from one task's end to the next task being queued and started, and "
    "from the last task's end to the run's: 7.1 per run with `[scheduler] scheduler_idle_sleep_time` "
    "at its default 1 s; 3.7-5.2 with 0.2 s (`infra/docker-compose.yml`).",
    "- **A skipped task held the run 5 s**: `tune` (tuning off) took 5.4, because a task's "
    "supervisor noticed its process had exited only at its next check, every "
    "`[workers] min_heartbeat_interval` (5 s); a successful task reports its state before that, a "
    "skipped one after. With 1 s: 1.0.", "",
    "After: overhead 38.7 at the same load (wall 84.8, step work 47.4); 25.6 at load 3.2 with the "
    "shared-layer images. Then the largest part left:", "",
    "- **The task runner's imports**: Airflow forks a process for each of the 10 tasks, which parsed "
    "the DAG file afresh, importing the docker and http providers, the docker SDK and aiohttp again "
    "(its log said `dag_file_parse_ms` ≈ 700). The scheduler now imports them before it forks "
    "(`orchestration/ct_scheduler.py`): task start → container created went from 0.4-0.9 to "
    "0.14-0.21 per step, a task without a container from 0.7-1.6 to 0.15-0.19; the task runner's "
    "part of a run from 10.6 to 2.9.", "",
    "Now (the table above: `make bench` from a clean clone, on bench-runs' stack after its ten runs, "
    "load 1.8): overhead 10.4 (max 10.9), not under 10 s. Earlier runs the same day: 9.2 (max 10.8) "
    "on a fresh stack of its own, 11.1 (max 13.5) on the shared stack. The target is at the edge. "
    "What is left:", "",
    "- **Interpreter and imports** in the step containers (pandas, pyarrow, scikit-learn, xgboost, "
    "Evidently, MLflow): 0.3-1.6 s per step, 5.1 per run; evaluate's 1.6 is MLflow's pyfunc, which "
    "it needs to load the Staging model. The steps use what they import, so lazy imports would only "
    "move these seconds into step work.",
    "- **Scheduling**: about 0.15 s from one task's end to the next task's queueing, 10 times.",
    "- **Tasks that start no container**: the gate, the approval and a skipped tune, about 0.3-0.4 "
    "each with their gaps.", "",
    "Candidates next: fewer tasks (the gate's decision is already made in evaluate; the approval need "
    "not be a task when `auto_approve` is on; a skipped tune still costs a task process), at the cost "
    "of the branches the UI shows.", "",
]


def epoch(stamp: str | None) -> float | None:
    """An Airflow ISO timestamp as seconds since the epoch."""
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def step_timing(log_lines: list[str]) -> dict[str, Any] | None:
    """The step's `ct.timing` line in a task log, or None (no container, or the step did not finish)."""
    found = None
    for line in log_lines:
        for match in TIMING.finditer(line):
            found = json.loads(match.group(1))
    return found


def containers(events: list[dict[str, Any]], run_id: str) -> list[dict[str, float]]:
    """The run's step containers from `docker events` lines: when each was created, started, died."""
    seen: dict[str, dict[str, float]] = {}
    for event in events:
        actor = event.get("Actor") or {}
        if (actor.get("Attributes") or {}).get("ct.dag_run") != run_id:
            continue
        action = event.get("Action") or event.get("status")
        if action in ("create", "start", "die"):
            seen.setdefault(actor.get("ID") or event["id"], {})[action] = event["timeNano"] / 1e9
    return sorted((c for c in seen.values() if {"create", "die"} <= c.keys()), key=lambda c: c["create"])


def breakdown(run: dict[str, Any], instances: list[dict[str, Any]], boxes: list[dict[str, float]],
              timings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One run's wall time split into PARTS per task, in the order the tasks ran, and its totals.

    The tasks of this DAG run one after another, so each task's scheduling part starts
    where the previous task ended: the parts, with the tail after the last task, add up
    to the run's wall time.
    """
    started, ended = epoch(run["start_date"]), epoch(run["end_date"])
    # A branch's skipped side gets a start and an end but was never queued: it never ran.
    ran = sorted((ti for ti in instances
                  if ti.get("queued_when") and ti.get("start_date") and ti.get("end_date")),
                 key=lambda ti: epoch(ti["start_date"]))
    previous = started
    tasks = []
    for ti in ran:
        start, end = epoch(ti["start_date"]), epoch(ti["end_date"])
        queued = epoch(ti.get("queued_when")) or start
        row = {"task": ti["task_id"], "state": ti["state"], "try_number": ti.get("try_number"),
               "scheduling": queued - previous, "queued": start - queued}
        box = [c for c in boxes if start <= c["create"] <= end]
        timing = timings.get(ti["task_id"])
        if box and timing and timing.get("started"):
            row.update(runner_before=box[-1]["create"] - start,
                       container_start=timing["started"] - box[-1]["create"],
                       imports=timing["imported"] - timing["started"],
                       work=timing["finished"] - timing["imported"],
                       container_exit=box[-1]["die"] - timing["finished"],
                       runner_after=end - box[-1]["die"])
        else:
            row["runner_only"] = end - start
        tasks.append(row)
        previous = max(previous, end)
    totals = {part: sum(row.get(part, 0.0) for row in tasks) for part in PARTS}
    totals["tail"] = ended - previous
    wall = ended - started
    return {"run_id": run["dag_run_id"], "wall": wall, "work": totals["work"],
            "overhead": wall - totals["work"],
            "run_queued": started - (epoch(run.get("queued_at")) or started),
            "parts": totals, "tasks": tasks}


def median(values: list[float]) -> float:
    """The median, rounded to 0.01 s."""
    return round(statistics.median(values), 2)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs: per task and part, the run's totals, and the overhead by group."""
    order: list[str] = []
    for run in runs:
        order += [row["task"] for row in run["tasks"] if row["task"] not in order]
    per_task = {}
    for task in order:
        rows = [row for run in runs for row in run["tasks"] if row["task"] == task]
        per_task[task] = {part: median([row[part] for row in rows]) for part in PARTS if part in rows[0]}
        per_task[task]["total"] = median([sum(row.get(part, 0.0) for part in PARTS) for row in rows])
    parts = {part: median([run["parts"][part] for run in runs]) for part in (*PARTS, "tail")}
    groups = {name: median([sum(run["parts"][part] for part in members) for run in runs])
              for name, members in GROUPS.items()}
    return {
        "runs": len(runs), "tasks": per_task, "parts": parts, "overhead_by_group": groups,
        "wall": median([run["wall"] for run in runs]), "work": median([run["work"] for run in runs]),
        "overhead": median([run["overhead"] for run in runs]),
        "overhead_max": round(max(run["overhead"] for run in runs), 2),
        "run_queued": median([run["run_queued"] for run in runs]),
        "load_before": median([run.get("load_before", 0.0) for run in runs]),
    }


def table(summary: dict[str, Any]) -> list[str]:
    """The per-task table (medians, seconds) and the run's line."""
    def cell(values: dict[str, float], part: str) -> str:
        return f"{values[part]:.2f}" if part in values else ""

    lines = ["| task | " + " | ".join(PART_NAMES[p] for p in PARTS) + " | total |",
             "| --- " * (len(PARTS) + 2) + "|"]
    for task, values in summary["tasks"].items():
        cells = " | ".join(cell(values, p) for p in PARTS)
        lines.append(f"| {task} | {cells} | {values['total']:.2f} |")
    parts = summary["parts"]
    lines.append("| **run** (sum of parts; + last task end → run end " f"{parts['tail']:.2f}) | "
                 + " | ".join(f"{parts[p]:.2f}" for p in PARTS) + f" | {summary['wall']:.2f} |")
    return lines


class DockerEvents:
    """`docker events` of the step containers, recorded in the background while the runs go."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        # pylint: disable-next=consider-using-with  # stopped in stop()
        self.process = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", "label=ct.step",
             "--format", "{{json .}}"], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    def stop(self) -> list[dict[str, Any]]:
        """Stop recording; the events seen."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.thread.join(timeout=10)
        return self.events


def measure_run(stack: BenchStack, client: Any, events: DockerEvents) -> dict[str, Any]:
    """Trigger one forced run, follow it to its end and split its time (with the load it ran under)."""
    load = os.getloadavg()[0]
    run_id = client.trigger({"force": True})
    state = client.follow(run_id, out=io.StringIO())
    if state != "success" or client.task_states(run_id).get("register") != "success":
        raise SystemExit(f"bench: run {run_id} ended {state}: {client.outcome(run_id)}")
    time.sleep(1)  # the last container's events
    instances = client.task_instances(run_id)
    timings = {}
    for ti in instances:
        if ti.get("start_date") and ti["state"] == "success":
            log = client.try_log_events(run_id, ti["task_id"], ti["try_number"])
            found = step_timing([stack.airflow_client.format_log_event(event) for event in log])
            if found:
                timings[ti["task_id"]] = found
    split = breakdown(client.run(run_id), instances, containers(list(events.events), run_id), timings)
    return {**split, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def wait_for_first_run(client: Any, timeout: float = 900) -> None:
    """The first run (started by the first dataset, or the schedule) has ended."""
    deadline = time.monotonic() + timeout
    client.wait_for_dag()
    while not client.runs():
        if time.monotonic() > deadline:
            raise SystemExit("bench: no run started after the stack came up")
        time.sleep(2)
    client.wait_until_idle(timeout=timeout)


def report(results: dict[str, Any]) -> list[str]:
    """dag.md: the figures, the table, and what dominates and what was done about it (FINDINGS)."""
    summary, host = results["summary"], results["machine"]
    groups = sorted(summary["overhead_by_group"].items(), key=lambda item: -item[1])
    return [
        "# Orchestration overhead of a training run (`make bench-dag`)", "",
        f"Measured on {describe(host)}: {summary['runs']} forced runs of ml_training_pipeline on the "
        "default data (breast_cancer, 569 rows), each check → prepare → drift → train → evaluate → gate → "
        "register → promote (tune skipped, approval automatic), on a bench stack (its own; under "
        "`make bench`, bench-runs' after its runs). Medians, seconds.", "",
        f"- run wall time (run start → end): **{summary['wall']:.1f}**; "
        f"step work: **{summary['work']:.1f}**; "
        f"overhead (wall − work): **{summary['overhead']:.1f}** (max {summary['overhead_max']:.1f}); "
        f"a triggered run waited {summary['run_queued']:.1f} more before it started; the machine's "
        f"1-minute load average before a run: {summary['load_before']:.1f} (another job on the machine "
        "slows every part)",
        f"- target: overhead under {TARGET_SECONDS:.0f} s: **{'met' if results['met'] else 'not met'}**",
        "- overhead by where it goes: " + "; ".join(f"{name} {value:.1f}" for name, value in groups), "",
        *table(summary), "",
        "Step work starts once the step's modules are imported, so imports a step makes lazily "
        "(mlflow in train and register, matplotlib in evaluate) count as its work.", "",
        *FINDINGS,
    ]


def collect(stack: BenchStack, up_seconds: float) -> dict[str, Any]:
    """RUNS forced runs on a running bench stack, once its runs so far have ended."""
    client = stack.client()
    wait_for_first_run(client)
    events = DockerEvents()
    try:
        runs = []
        for number in range(RUNS):
            runs.append(measure_run(stack, client, events))
            print(f"bench-dag: run {number + 1}/{RUNS}: wall {runs[-1]['wall']:.1f} s, "
                  f"work {runs[-1]['work']:.1f} s, overhead {runs[-1]['overhead']:.1f} s", flush=True)
    finally:
        events.stop()
    summary = summarise(runs)
    return {"machine": machine(), "make_up_seconds": round(up_seconds, 1),
            "target_overhead_seconds": TARGET_SECONDS, "met": summary["overhead"] < TARGET_SECONDS,
            "summary": summary, "runs": runs}


def finish(results: dict[str, Any]) -> int:
    """Write dag.json and dag.md; the exit code (1: the target missed)."""
    write_results("dag", results, report(results))
    return 0 if results["met"] else 1


def main() -> int:
    """Up, RUNS forced runs, down; write the results. `--render`: rewrite dag.md from dag.json."""
    if sys.argv[1:] == ["--render"]:
        results = json.loads((RESULTS / "dag.json").read_text(encoding="utf-8"))
        write_results("dag", results, report(results))
        return 0
    return bench_alone(STACK, collect, finish)


if __name__ == "__main__":
    sys.exit(main())
