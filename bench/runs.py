#!/usr/bin/env python3
"""How fast the stack answers a user: a run with nothing new, and a published file starting a run.

Starts a stack of its own (project ct-bench, its own ports, .env.bench) from the
built images, so no developer's runs or models are touched; measures, as a user
sees them, `make run` when no data version is newer than the Staging model's and
the time from `make publish` to the run it starts (and to its registered model);
then removes the stack. Writes bench/results/runs.json and runs.md.

Targets (issue: unattended runs): a run with nothing new answers in under 30 s;
a published file starts a run in under 30 s.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ENV = {
    "COMPOSE_PROJECT_NAME": "ct-bench", "ENV_FILE": str(REPO / ".env.bench"), "CT_DOCKER_NETWORK": "ct-bench",
    "AIRFLOW_PORT": "28080", "MLFLOW_PORT": "25000", "S3_PORT": "29000", "S3_CONSOLE_PORT": "29001",
    # Nobody answers approval requests here: a pending one would hold every later run.
    "CT_AUTO_APPROVE": "true",
}
TARGET_SECONDS = 30.0
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))


def load_airflow_client():
    """infra/scripts/airflow_client.py, the client `make run` uses."""
    spec = importlib.util.spec_from_file_location("airflow_client", REPO / "infra/scripts/airflow_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sh(*args: str, check: bool = True) -> str:
    """Run a command as a user would, with the bench stack's environment; fail loudly."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(list(args), cwd=REPO, env={**env, **ENV}, capture_output=True, text=True,
                          check=False, timeout=1800)
    if check and done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def compose(*args: str) -> str:
    """docker compose on the bench stack; a stack that is not there is fine."""
    return sh("bash", "-c", 'source infra/scripts/stack.sh && compose "$@"', "compose", *args, check=False)


def timed(*args: str) -> tuple[float, str]:
    """Seconds a command took, and its output."""
    started = time.monotonic()
    out = sh(*args)
    return time.monotonic() - started, out


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max, rounded."""
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "n": len(values)}


def measure(client, pointer_table: str) -> dict:
    """The two latencies, REPEATS times each."""
    client.wait_for_dag()
    client.wait_until_idle()  # the first scheduled run trains on the first dataset
    noop = []
    for _ in range(REPEATS):
        seconds, out = timed("make", "run")
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
        sh("make", "publish", f"FILE={path}")
        while not (new := [r for r in client.runs() if r["dag_run_id"] not in known]):
            time.sleep(0.2)
        start.append(time.monotonic() - began)
        state = client.follow(new[0]["dag_run_id"], out=io.StringIO())
        registered.append(time.monotonic() - began)
        assert state == "success", client.outcome(new[0]["dag_run_id"])
        path.unlink()
    return {"no_new_data_run_seconds": summary(noop), "publish_to_run_start_seconds": summary(start),
            "publish_to_registered_seconds": summary(registered)}


def main() -> int:
    """Up, measure, down; write the results."""
    airflow_client = load_airflow_client()
    compose("down", "--volumes", "--remove-orphans")
    Path(ENV["ENV_FILE"]).unlink(missing_ok=True)
    try:
        up_seconds, _ = timed("infra/scripts/up.sh")
        env = airflow_client.read_env_file(Path(ENV["ENV_FILE"]))
        client = airflow_client.AirflowClient(f"http://localhost:{ENV['AIRFLOW_PORT']}", "admin",
                                              env["AIRFLOW_ADMIN_PASSWORD"])
        import boto3  # pylint: disable=import-outside-toplevel

        s3 = boto3.client("s3", endpoint_url=f"http://localhost:{ENV['S3_PORT']}", region_name="us-east-1",
                          aws_access_key_id=env["S3_ACCESS_KEY"], aws_secret_access_key=env["S3_SECRET_KEY"])
        pointer = s3.get_object(Bucket="dvc-data", Key="published/breast_cancer.json")["Body"].read()
        md5 = json.loads(pointer)["md5"]
        key = f"dvcstore/files/md5/{md5[:2]}/{md5[2:]}"
        table = s3.get_object(Bucket="dvc-data", Key=key)["Body"].read()
        results = {"make_up_seconds": round(up_seconds, 1), **measure(client, table.decode())}
    finally:
        compose("down", "--volumes", "--remove-orphans")
        Path(ENV["ENV_FILE"]).unlink(missing_ok=True)
    results["target_seconds"] = TARGET_SECONDS
    results["met"] = {name: results[name]["max"] < TARGET_SECONDS
                      for name in ("no_new_data_run_seconds", "publish_to_run_start_seconds")}
    results["measured_on"] = f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "runs.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    rows = [f"| {name.replace('_', ' ')} | {v['median']} | {v['min']} | {v['max']} | {v['n']} |"
            for name, v in results.items() if isinstance(v, dict) and "median" in v]
    (RESULTS / "runs.md").write_text("\n".join([
        "# Run latency as a user sees it (`make bench-runs`)", "",
        f"Measured on {results['measured_on']}; `make up` from built images took "
        f"{results['make_up_seconds']} s. Target: under {TARGET_SECONDS:.0f} s for a run with nothing "
        "new and for a published file to start a run.",
        "", "| seconds | median | min | max | n |", "| --- | --- | --- | --- | --- |", *rows, "",
        f"Targets met: {results['met']}", "",
    ]), encoding="utf-8")
    print((RESULTS / "runs.md").read_text(encoding="utf-8"))
    return 0 if all(results["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
