#!/usr/bin/env python3
"""The model server next to `mlflow models serve`, and the model server through alias swaps under load.

`make bench-serve` starts a local S3 (SeaweedFS) and MLflow (its basic-auth app,
webhooks on), trains and registers two versions of the default model
(breast_cancer: 30 number columns) with the steps' own code, and points
``production`` at one. Then, on this machine, one after the other:

1. Side by side: this server (``python -m pipeline_steps model_server``) and
   ``mlflow models serve -m models:/<name>@production``, each with 2 processes,
   driven by the same load generator (wrk, from Debian; installed when missing and
   root) with the same requests: 1-row and 100-row requests at concurrency 1 and 32,
   BENCH_SERVE_SECONDS (default 15) each: requests per second, p50 and p99 latency,
   failed requests.
2. Swaps: K alias moves (BENCH_SERVE_SWAPS, default 10), alternating the two
   versions as promotion and rollback do, while 4 clients keep asking: failed
   requests, answers that mixed versions, answers from the old version after the
   new one had answered, and the seconds from each move to the first answer from
   the new version (MLflow's webhook tells the server; its own check is every 30 s here).

Writes bench/results/serve.json and serve.md. Targets (issue #31): at least 2x
MLflow's requests per second on 1-row requests with a lower p99; no failed request
across 10 swaps; each new version served within 10 s of its alias move. Exit 1
when one is missed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the steps and tests/services.py, as in the repository
# pylint: disable=wrong-import-position
from scale import machine  # noqa: E402  (a sibling, as bench/on_stack.py imports dag)
from tests import services  # noqa: E402  # pylint: disable=import-error

RESULTS = REPO / "bench" / "results"
MODEL = "bench-serve"
ADMIN_PASSWORD = "bench-admin-password"
SERVER_PASSWORD = "bench-server-password"
KEY = "bench-key"
WEBHOOK_SECRET = "bench-webhook-secret"
PROCESSES = 2
SCENARIOS = ((1, 1), (1, 32), (100, 1), (100, 32))  # (rows per request, concurrency)
SWAP_CLIENTS = 4
TARGET_RPS_RATIO = 2.0
TARGET_SWAP_SECONDS = 10.0


def wrk_binary() -> str:
    """wrk, installed from Debian when it is missing and this is root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench-serve: installing wrk (apt-get install wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        return shutil.which("wrk") or "wrk"
    raise SystemExit("bench-serve: needs wrk (Debian: apt-get install wrk)")


def train_versions(settings_env: dict[str, str], workdir: Path) -> list[str]:
    """Two registered versions of the default model (seeds 1 and 2); their numbers."""
    # pylint: disable=import-outside-toplevel
    import dataclasses

    from pipeline_steps.data.builtin import builtin_csv
    from pipeline_steps.services.storage import Storage
    from pipeline_steps.settings import load_settings
    from pipeline_steps.steps import evaluate, prepare, register, train

    os.environ.update(settings_env)
    versions = []
    for seed in (1, 2):
        settings = dataclasses.replace(load_settings(), seed=seed, quality_threshold=0.0,
                                       quality_tolerance=1.0)
        store = Storage(settings.s3)
        source = workdir / "breast_cancer.csv"
        source.write_bytes(builtin_csv("breast_cancer", settings.target_column))
        prefix = f"s3://pipeline-runs/bench-serve/{seed}"
        prepared = prepare.prepare(settings, store, f"{prefix}/prepare", input_uri=str(source))
        trained = train.train(settings, store, prepared["prepared_uri"], f"{prefix}/train")
        evaluated = evaluate.evaluate(settings, store, trained["trained_uri"], f"{prefix}/evaluate")
        versions.append(str(register.register(settings, store, evaluated["evaluated_uri"])["version"]))
    return versions


def move_alias(version: str) -> None:
    """Point production at the version, as promotion and rollback do."""
    # pylint: disable=import-outside-toplevel
    from pipeline_steps.modelling.production import serve
    from pipeline_steps.services import tracking
    from pipeline_steps.settings import load_settings

    serve(tracking.connect(load_settings()), MODEL, version)


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[None]:
    """A server process, ready when ``ready_url`` answers 200; stopped at the end."""
    with services.process(command, log, env=env, cwd=REPO) as running:
        services.wait_until(lambda: status(ready_url) == 200, command[0], running, log, timeout=180)
        yield


def status(url: str) -> int | None:
    """The HTTP status of a GET (None: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wrk(binary: str, url: str, body: bytes, headers: dict[str, str], concurrency: int,
        seconds: int, workdir: Path) -> dict[str, Any]:
    """wrk POSTing ``body``: requests per second, p50/p99 ms, failed requests."""
    script = workdir / "post.lua"
    lines = ["wrk.method = \"POST\"", f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [binary, "-t", str(min(2, concurrency)), "-c", str(concurrency), "-d", f"{seconds}s",
               "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    out = done.stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)$", out, re.MULTILINE))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(percentiles["50"]), "p99_ms": _ms(percentiles["99"]),
        "requests": requests,
        "failed": ((int(non_2xx.group(1)) if non_2xx else 0)
                   + (sum(map(int, errors.groups())) if errors else 0)),
    }


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return round(float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 3)


def records(count: int) -> list[dict[str, Any]]:
    """The first ``count`` rows of the table, without the label, as a client sends them."""
    import io  # pylint: disable=import-outside-toplevel

    import pandas as pd  # pylint: disable=import-outside-toplevel

    from pipeline_steps.data.builtin import builtin_csv  # pylint: disable=import-outside-toplevel

    table = pd.read_csv(io.BytesIO(builtin_csv("breast_cancer", "target"))).drop(columns=["target"])
    rows = pd.concat([table] * (count // len(table) + 1)).head(count)
    return json.loads(rows.to_json(orient="records"))


def side_by_side(binary: str, ours: str, theirs: str, seconds: int, workdir: Path) -> list[dict[str, Any]]:
    """Each scenario on both servers, one after the other."""
    found = []
    for rows, concurrency in SCENARIOS:
        asked = records(rows)
        entry: dict[str, Any] = {"rows": rows, "concurrency": concurrency}
        entry["model_server"] = wrk(binary, f"{ours}/predict", json.dumps(asked).encode(),
                                    {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
                                    concurrency, seconds, workdir)
        entry["mlflow_models_serve"] = wrk(binary, f"{theirs}/invocations",
                                           json.dumps({"dataframe_records": asked}).encode(),
                                           {"Content-Type": "application/json"}, concurrency, seconds,
                                           workdir)
        entry["rps_ratio"] = round(entry["model_server"]["requests_per_second"]
                                   / max(entry["mlflow_models_serve"]["requests_per_second"], 1e-9), 2)
        print(f"bench-serve: {rows} row(s), concurrency {concurrency}: {json.dumps(entry)}", flush=True)
        found.append(entry)
    return found


def swaps(ours: str, versions: list[str], count: int) -> dict[str, Any]:
    """Alias moves under load: failures, mixed or stale answers, seconds to the new version."""
    body = json.dumps(records(10)).encode()
    answers: list[tuple[float, int | None, str | None, int]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            request = urllib.request.Request(f"{ours}/predict", data=body, method="POST", headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                    # One version answers a request; each row's answer carries it in the response.
                    answers.append((time.monotonic(), response.status, answer["model_version"], 1))
            except urllib.error.HTTPError as exc:
                answers.append((time.monotonic(), exc.code, None, 0))
            except (urllib.error.URLError, OSError):
                answers.append((time.monotonic(), None, None, 0))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(SWAP_CLIENTS)]
    for thread in threads:
        thread.start()
    moves = []
    try:
        time.sleep(2)
        for index in range(count):
            version = versions[(index + 1) % 2]
            old = versions[index % 2]
            moved = time.monotonic()
            move_alias(version)
            deadline = moved + 30
            while time.monotonic() < deadline and not any(
                    at > moved and answered == version for at, _, answered, _ in list(answers)):
                time.sleep(0.02)
            after = [a for a in answers if a[0] > moved]
            first = min((at for at, _, answered, _ in after if answered == version), default=None)
            time.sleep(3)
            stale = [a for a in answers if first is not None and first < a[0] < moved + 30 and a[2] == old]
            moves.append({"to": version, "seconds_to_first_answer": None if first is None
                          else round(first - moved, 3), "old_version_answers_after_first_new": len(stale)})
            print(f"bench-serve: swap {index + 1}: {moves[-1]}", flush=True)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    seconds = [m["seconds_to_first_answer"] for m in moves if m["seconds_to_first_answer"] is not None]
    return {
        "swaps": count, "clients": SWAP_CLIENTS, "requests": len(answers),
        "failed_requests": sum(1 for a in answers if a[1] != 200),
        "mixed_version_answers": sum(1 for a in answers if a[1] == 200 and a[3] != 1),
        "old_version_answers_after_first_new": sum(m["old_version_answers_after_first_new"] for m in moves),
        "seconds_to_new_version": {"median": round(statistics.median(seconds), 3) if seconds else None,
                                   "max": max(seconds) if seconds else None},
        "moves": moves,
    }


def judge(compared: list[dict[str, Any]], swapped: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each met or not."""
    one_row = [entry for entry in compared if entry["rows"] == 1]
    served = [m["seconds_to_first_answer"] for m in swapped["moves"]]
    return {
        "one_row_rps_at_least_2x_mlflow": all(e["rps_ratio"] >= TARGET_RPS_RATIO for e in one_row),
        "one_row_p99_lower_than_mlflow": all(e["model_server"]["p99_ms"] < e["mlflow_models_serve"]["p99_ms"]
                                             for e in one_row),
        "no_failed_request_across_swaps": swapped["failed_requests"] == 0,
        "no_mixed_version_answer": swapped["mixed_version_answers"] == 0,
        "each_swap_served_within_10_s": all(s is not None and s <= TARGET_SWAP_SECONDS for s in served),
    }


def markdown(report: dict[str, Any]) -> list[str]:
    """serve.md: the table side by side, then the swaps."""
    lines = ["# The model server next to `mlflow models serve` (`make bench-serve`)", "",
             f"Measured on {report['machine']}, {report['date']}; both with {PROCESSES} processes, the same "
             f"model ({MODEL}, breast_cancer, 30 number columns), wrk for {report['seconds']} s per cell.",
             "",
             "| rows/request | concurrency | server | requests/s | p50 ms | p99 ms | failed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for entry in report["side_by_side"]:
        for name in ("model_server", "mlflow_models_serve"):
            found = entry[name]
            lines.append(f"| {entry['rows']} | {entry['concurrency']} | {name.replace('_', ' ')} | "
                         f"{found['requests_per_second']:.0f} | {found['p50_ms']} | {found['p99_ms']} | "
                         f"{found['failed']} |")
    swapped = report["swaps"]
    ratios = ", ".join(f"{e['rows']} row(s) at {e['concurrency']}: {e['rps_ratio']}x"
                       for e in report["side_by_side"])
    lines += ["", f"Requests per second, this server / MLflow's: {ratios}.",
              "", f"## {swapped['swaps']} alias swaps under load "
              f"({swapped['clients']} clients, 10-row requests)", "",
              f"- requests: {swapped['requests']}, failed: {swapped['failed_requests']}, "
              f"answers mixing versions: {swapped['mixed_version_answers']}",
              f"- seconds from an alias move to the first answer from the new version: median "
              f"{swapped['seconds_to_new_version']['median']}, "
              f"max {swapped['seconds_to_new_version']['max']}",
              f"- answers from the old version after the new one had answered (the other process had not "
              f"swapped yet): {swapped['old_version_answers_after_first_new']}",
              "", f"Targets met: {report['targets']}", ""]
    return lines


def main() -> int:
    """Set up, measure, write the results; 1 when a target is missed."""
    seconds = int(os.environ.get("BENCH_SERVE_SECONDS", "15"))
    swap_count = int(os.environ.get("BENCH_SERVE_SWAPS", "10"))
    binary = wrk_binary()
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    with ExitStack() as stack:
        (workdir / "s3").mkdir()
        (workdir / "mlflow").mkdir()
        s3 = stack.enter_context(services.s3_server(workdir / "s3"))
        mlflow_uri = stack.enter_context(services.mlflow_server(workdir / "mlflow", s3, ADMIN_PASSWORD))
        ours_port, theirs_port = services.free_port(), services.free_port()
        admin = {"S3_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": services.ACCESS_KEY,
                 "AWS_SECRET_ACCESS_KEY": services.SECRET_KEY, "MLFLOW_TRACKING_URI": mlflow_uri,
                 "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD,
                 "MODEL_NAME": MODEL, "GIT_COMMIT": "0" * 40, "STEP_IMAGE": "bench",
                 "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
                 "SERVE_WEBHOOK_SECRET": WEBHOOK_SECRET, "LOG_LEVEL": "WARNING",
                 "SERVE_WEBHOOK_URL": f"http://127.0.0.1:{ours_port}/webhooks/mlflow"}
        versions = train_versions(admin, workdir)
        move_alias(versions[0])
        subprocess.run([sys.executable, "-m", "pipeline_steps", "model_server", "setup"], check=True,
                       env={**os.environ, **admin, "MLFLOW_SERVER_PASSWORD": SERVER_PASSWORD},
                       stdout=subprocess.DEVNULL, cwd=REPO)
        ours = f"http://127.0.0.1:{ours_port}"
        theirs = f"http://127.0.0.1:{theirs_port}"
        stack.enter_context(process(
            [sys.executable, "-m", "pipeline_steps", "model_server", "--host", "127.0.0.1",
             "--port", str(ours_port)],
            {**os.environ, **admin, "MLFLOW_TRACKING_USERNAME": "model-server",
             "MLFLOW_TRACKING_PASSWORD": SERVER_PASSWORD, "SERVE_API_KEY": KEY,
             "SERVE_PROCESSES": str(PROCESSES), "SERVE_ALIAS_CHECK_SECONDS": "30"},
            workdir / "model-server.log", f"{ours}/health"))
        stack.enter_context(process(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve",
             "-m", f"models:/{MODEL}@production",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(theirs_port),
             "--workers", str(PROCESSES)],
            {**os.environ, **admin}, workdir / "mlflow-serve.log", f"{theirs}/ping"))
        compared = side_by_side(binary, ours, theirs, seconds, workdir)
        swapped = swaps(ours, versions, swap_count)
    report = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "seconds": seconds,
              "processes": PROCESSES, "side_by_side": compared, "swaps": swapped}
    report["targets"] = judge(compared, swapped)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "serve.md").write_text("\n".join(markdown(report)), encoding="utf-8")
    print((RESULTS / "serve.md").read_text(encoding="utf-8"))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
