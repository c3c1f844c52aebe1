#!/usr/bin/env python3
"""How fast the stack answers a user: a run with nothing new, and a published file starting a run.

Starts a stack of its own (project ct-bench, its own ports, .env.ct-bench) from the
built images, so no developer's runs or models are touched; measures, as a user
sees them, `make run` when no data version is newer than the Staging model's and
the time from `make publish` to the run it starts (and to its registered model);
then removes the stack. Writes bench/results/runs.json and runs.md.

Targets (issue: unattended runs): a run with nothing new answers in under 30 s;
a published file starts a run in under 30 s.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

from stack import BenchStack, bench_alone, describe, machine, summary, write_results

STACK = BenchStack("ct-bench", {"airflow": 28080, "mlflow": 25000, "s3": 29000, "s3_console": 29001})
TARGET_SECONDS = 30.0
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))


def measure(stack: BenchStack, client, pointer_table: str) -> dict:
    """The two latencies, REPEATS times each."""
    client.wait_for_dag()
    client.wait_until_idle()  # the first scheduled run trains on the first dataset
    noop = []
    for _ in range(REPEATS):
        seconds, out = stack.timed("make", "run")
        assert ": skipped: " in out.strip().splitlines()[-1], out
        noop.append(seconds)
    start, registered = [], []
    table = pointer_table
    for attempt in range(REPEATS):
        client.wait_until_idle()
        known = {r["dag_run_id"] for r in client.runs()}
        table += table.splitlines()[1 + attempt] + "\n"  # one more repeated row: a new version
        path = Path(f"/tmp/ct-bench-{attempt}.csv")
        path.write_text(table, encoding="utf-8")
        began = time.monotonic()
        stack.sh("make", "publish", f"FILE={path}")
        while not (new := [r for r in client.runs() if r["dag_run_id"] not in known]):
            time.sleep(0.2)
        start.append(time.monotonic() - began)
        state = client.follow(new[0]["dag_run_id"], out=io.StringIO())
        registered.append(time.monotonic() - began)
        assert state == "success", client.outcome(new[0]["dag_run_id"])
        path.unlink()
    return {"no_new_data_run_seconds": summary(noop), "publish_to_run_start_seconds": summary(start),
            "publish_to_registered_seconds": summary(registered)}


def collect(stack: BenchStack, up_seconds: float) -> dict:
    """The measurements on a running bench stack that has not been used yet."""
    client = stack.client()
    s3 = stack.s3()
    pointer = s3.get_object(Bucket="dvc-data", Key="published/breast_cancer.json")["Body"].read()
    md5 = json.loads(pointer)["md5"]
    key = f"dvcstore/files/md5/{md5[:2]}/{md5[2:]}"
    table = s3.get_object(Bucket="dvc-data", Key=key)["Body"].read()
    return {"make_up_seconds": round(up_seconds, 1), **measure(stack, client, table.decode())}


def finish(results: dict) -> int:
    """Judge the targets, write runs.json and runs.md; the exit code (1: a target missed)."""
    results["target_seconds"] = TARGET_SECONDS
    results["met"] = {name: results[name]["max"] < TARGET_SECONDS
                      for name in ("no_new_data_run_seconds", "publish_to_run_start_seconds")}
    results["machine"] = machine()
    rows = [f"| {name.replace('_', ' ')} | {v['median']} | {v['min']} | {v['max']} | {v['n']} |"
            for name, v in results.items() if isinstance(v, dict) and "median" in v]
    write_results("runs", results, [
        "# Run latency as a user sees it (`make bench-runs`)", "",
        f"Measured on {describe(results['machine'])}; `make up` from built images took "
        f"{results['make_up_seconds']} s. Target: under {TARGET_SECONDS:.0f} s for a run with nothing "
        "new and for a published file to start a run.",
        "", "| seconds | median | min | max | n |", "| --- | --- | --- | --- | --- |", *rows, "",
        f"Targets met: {results['met']}", "",
    ])
    return 0 if all(results["met"].values()) else 1


def main() -> int:
    """Up, measure, down; write the results."""
    return bench_alone(STACK, collect, finish)


if __name__ == "__main__":
    sys.exit(main())
