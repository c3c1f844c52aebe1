#!/usr/bin/env python3
"""How the step pipeline scales with the data, next to the same work in one plain Python process.

`make bench-scale` generates seeded synthetic tables (30 numeric and 5 text
columns, a text label, about 2 % missing values) of growing size and, for each,
runs the step CLIs prepare, train and evaluate on local files (MLflow tracking
into a SQLite file), then again on S3 (a SeaweedFS server, as the stack runs,
with an MLflow server whose artifacts live there), and a baseline: one process
that reads the same CSV, splits it the same way, fits XGBoost with the same
parameters, predicts and scores.
Each runs as its own process, so its wall time and peak memory (the kernel's
``ru_maxrss`` from ``wait4``) are its own: a bare interpreter starts it, not
this process, whose memory a child forked from it counts until it execs. Writes bench/results/scale.json,
scale.md and scale.png (time and memory against rows, log-log).

Targets (issue #12): the steps within 1.3x the baseline's time at 1M rows; no
step's peak memory above 3x the table's in-memory size (judged where the table,
not the libraries' fixed footprint, dominates: 1M rows and up); nothing
quadratic (the log-log slope between the two largest sizes, printed).

Sizes: BENCH_SCALE_ROWS (comma-separated), default 10000,100000,1000000,5000000.
BENCH_SCALE_S3=no leaves out the runs on S3.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the steps' params and tests/services.py, as in the repository
RESULTS = REPO / "bench" / "results"
SEED = 42
TEST_SIZE = 0.2
TARGET = "label"
STEPS = ("prepare", "train", "evaluate")
DEFAULT_ROWS = (10_000, 100_000, 1_000_000, 5_000_000)
TIME_TARGET_RATIO = 1.3
MEMORY_TARGET_RATIO = 3.0
MEMORY_JUDGED_FROM_ROWS = 1_000_000
TIME_JUDGED_AT_ROWS = 1_000_000


def xgb_params() -> dict[str, Any]:
    """params.yaml's train.xgb: what the steps fit with, and so the baseline too."""
    from pipeline_steps.settings import load_settings  # pylint: disable=import-outside-toplevel

    return load_settings({}).xgb_params


def make_table(rows: int, seed: int = SEED) -> pd.DataFrame:
    """A seeded table a model can learn: the label depends on some numbers and one text column."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, 30)).astype("float64")
    levels = [np.array([f"level_{i}" for i in range(k)]) for k in (3, 5, 8, 12, 20)]
    texts = [rng.integers(0, len(names), size=rows) for names in levels]
    logit = numbers[:, :6] @ np.array([1.2, -0.8, 0.6, 0.5, -0.4, 0.3]) + (texts[0] == 1) * 0.8
    label = np.where(logit + rng.logistic(size=rows) > 0.3, "yes", "no")
    frame = pd.DataFrame(numbers, columns=[f"num_{i:02d}" for i in range(30)])
    for i, (names, codes) in enumerate(zip(levels, texts)):
        frame[f"cat_{i}"] = names[codes]
    missing = rng.random(size=(rows, 30)) < 0.02
    frame[frame.columns[:30]] = frame[frame.columns[:30]].mask(missing)
    frame[TARGET] = label
    return frame


# Starts the measured command and reports its peak memory. A child forked from this
# process would count this process's own memory (the generated table, the frames of
# earlier sizes) in its peak until it execs; forked from a bare interpreter (-S) it
# counts about 10 MiB.
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w', encoding='ascii').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status) % 256)\n"
)


def measured(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a process to its end: its wall seconds and peak resident memory (MiB), or its error."""
    # Output to files, not pipes: nothing is read before the process has ended.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        started = time.perf_counter()
        returncode = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, peak.name, *command],
                                    env=env, stdout=out, stderr=err, text=True, check=False).returncode
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        peak_kib = int(peak.read() or 0)
    if returncode != 0:
        raise SystemExit(f"bench-scale: {' '.join(command)} failed ({returncode}):\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_mib": round(peak_kib / 1024, 1),
            "result": stdout.strip().splitlines()[-1] if stdout.strip() else ""}


def step_env(work: Path) -> dict[str, str]:
    """The steps' settings for the synthetic table; MLflow into a SQLite file of its own."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "S3_"))}
    return {**keep, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "DATASET_NAME": "synthetic",
            "TARGET_COLUMN": TARGET, "POSITIVE_CLASS": "yes", "SEED": str(SEED), "TEST_SIZE": str(TEST_SIZE),
            "GIT_COMMIT": "bench", "LOG_LEVEL": "WARNING", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "PYTHONPATH": str(REPO)}


class S3Stack:
    """A SeaweedFS S3 server and an MLflow server on it (tests/services.py), as the stack runs them."""

    def __init__(self, stack: ExitStack, work: Path) -> None:
        from tests import services  # pylint: disable=import-outside-toplevel,import-error

        (work / "s3").mkdir()
        (work / "mlflow").mkdir()
        self.server = stack.enter_context(services.s3_server(work / "s3"))
        self.mlflow_uri = stack.enter_context(services.mlflow_server(work / "mlflow", self.server))
        # The steps' own identity: read the data, read and write run outputs (as in the stack).
        self.keys = {"AWS_ACCESS_KEY_ID": services.PIPELINE_ACCESS_KEY,
                     "AWS_SECRET_ACCESS_KEY": services.PIPELINE_SECRET_KEY}

    def env(self, work: Path) -> dict[str, str]:
        """step_env, with S3 and the MLflow server in place of local files and SQLite."""
        return {**step_env(work), **self.keys, "S3_ENDPOINT_URL": self.server.endpoint,
                "MLFLOW_TRACKING_URI": self.mlflow_uri}

    def upload(self, path: Path, rows: int) -> str:
        """The table where a published data version would be; its URI."""
        key = f"bench-scale/{rows}/{path.name}"
        self.server.client().upload_file(str(path), "dvc-data", key)
        return f"s3://dvc-data/{key}"


def run_steps(table: str, outputs: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The steps that make a model's numbers (prepare, train, evaluate: the pipeline's declaration) as
    their CLIs, one process each, outputs under ``outputs``."""
    # pylint: disable=import-outside-toplevel
    from pipeline_steps import pipeline
    from pipeline_steps.pipeline import Input

    def value(item: Input) -> str | None:
        if item.file:
            return table
        return f"{outputs}/{item.step}" if item.step in names else None

    names = [step.name for step in pipeline.making("evaluate")]
    return {step: measured([sys.executable, "-m", "pipeline_steps", step,
                            *pipeline.step(step).arguments(value, f"{outputs}/{step}")], env)
            for step in names}


def summarised(steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per step seconds and MiB, the total, the worst peak, and the f1 evaluate reported."""
    evaluated = json.loads(steps["evaluate"]["result"])
    steps = {name: {k: v for k, v in step.items() if k != "result"} for name, step in steps.items()}
    return {"steps": steps, "steps_seconds": round(sum(s["seconds"] for s in steps.values()), 2),
            "peak_mib": max(s["peak_mib"] for s in steps.values()),
            "f1": round(evaluated["metrics"]["f1"], 4)}


def bench_size(rows: int, work: Path, s3: S3Stack | None) -> dict[str, Any]:
    """One table size: the steps on local files, on S3, then the baseline, on the same CSV."""
    frame = make_table(rows)
    table_mib = float(frame.memory_usage(deep=True).sum()) / 2**20
    csv = work / "table.csv"
    # pyarrow's writer, not DataFrame.to_csv: the same table in a tenth of the time (5M rows:
    # minutes of the benchmark's budget otherwise); pandas reads it back alike.
    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), csv)
    del frame
    env = step_env(work)
    # The SQLite store's schema is created once (MLflow's migrations take seconds), before the
    # clock starts: the stack's steps talk to a running server, which has it already.
    subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
                   env=env, check=True, capture_output=True)
    local = summarised(run_steps(str(csv), str(work), env))
    on_s3 = summarised(run_steps(s3.upload(csv, rows), f"s3://pipeline-runs/bench-scale/{rows}",
                                 s3.env(work))) if s3 else None
    plain = measured([sys.executable, __file__, "--baseline", str(csv)], env)
    scored = json.loads(plain.pop("result"))
    total = local["steps_seconds"]
    result = {
        "rows": rows, "csv_mib": round(csv.stat().st_size / 2**20, 1), "table_mib": round(table_mib, 1),
        "steps": local["steps"], "steps_seconds": total, "baseline": plain,
        "time_ratio": round(total / plain["seconds"], 2),
        "peak_mib": local["peak_mib"],
        "memory_ratio": round(local["peak_mib"] / table_mib, 2),
        "f1": {"steps": local["f1"], "baseline": round(scored["f1"], 4)},
    }
    if on_s3:
        result["s3"] = {**on_s3, "time_ratio": round(on_s3["steps_seconds"] / plain["seconds"], 2),
                        "memory_ratio": round(on_s3["peak_mib"] / table_mib, 2)}
    print(f"bench-scale: {rows:>9,} rows: steps {total:7.1f} s ("
          + ", ".join(f"{k} {v['seconds']:.1f} s / {v['peak_mib']:.0f} MiB"
                      for k, v in local["steps"].items())
          + (f"), on S3 {on_s3['steps_seconds']:.1f} s / {on_s3['peak_mib']:.0f} MiB" if on_s3 else ")")
          + f", baseline {plain['seconds']:.1f} s / {plain['peak_mib']:.0f} MiB; "
          f"table {table_mib:.0f} MiB", flush=True)
    return result


def baseline(csv: str) -> dict[str, float]:
    """The same work in one plain process: read, split, fit, predict, score. No tracking, no files."""
    # pylint: disable=import-outside-toplevel
    from sklearn.metrics import f1_score, roc_auc_score
    from xgboost import XGBClassifier

    from pipeline_steps.data.split import split  # the steps' split: each row's side by its own id

    frame = pd.read_csv(csv)
    text = [c for c in frame.select_dtypes(exclude="number").columns if c != TARGET]
    frame[text] = frame[text].astype("category")
    train, test, _, _ = split(frame, TARGET, TEST_SIZE, SEED)
    model = XGBClassifier(**{"enable_categorical": True, **xgb_params()}, random_state=SEED)
    model.fit(train.drop(columns=TARGET), (train[TARGET] == "yes").astype(int))
    probabilities = model.predict_proba(test.drop(columns=TARGET))[:, 1]
    truth = (test[TARGET] == "yes").astype(int)
    return {"f1": f1_score(truth, probabilities > 0.5), "roc_auc": roc_auc_score(truth, probabilities)}


def slopes(results: list[dict[str, Any]]) -> dict[str, float]:
    """d log(seconds) / d log(rows) between the two largest sizes: 1 is linear, 2 quadratic."""
    if len(results) < 2:
        return {}
    small, large = results[-2], results[-1]
    span = math.log(large["rows"] / small["rows"])

    def slope(a: float, b: float) -> float:
        return round(math.log(max(b, 1e-3) / max(a, 1e-3)) / span, 2)

    found = {step: slope(small["steps"][step]["seconds"], large["steps"][step]["seconds"]) for step in STEPS}
    found["baseline"] = slope(small["baseline"]["seconds"], large["baseline"]["seconds"])
    return found


def machine() -> str:
    """Cores, memory and Python: what the numbers were measured on."""
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").split()
    total_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    return (f"{os.cpu_count()} cores, {total_gib:.0f} GiB, {platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Seconds and peak MiB against rows, log-log: each step, the steps together, the baseline."""
    # pylint: disable=import-outside-toplevel
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [r["rows"] for r in results]
    figure, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    for step in STEPS:
        time_ax.plot(rows, [r["steps"][step]["seconds"] for r in results], "o-", label=step)
        memory_ax.plot(rows, [r["steps"][step]["peak_mib"] for r in results], "o-", label=step)
    time_ax.plot(rows, [r["steps_seconds"] for r in results], "s-", color="black", label="steps together")
    if all("s3" in r for r in results):
        time_ax.plot(rows, [r["s3"]["steps_seconds"] for r in results], "s:", color="black",
                     label="steps together, on S3")
        memory_ax.plot(rows, [r["s3"]["peak_mib"] for r in results], "s:", color="black",
                       label="worst step, on S3")
    time_ax.plot(rows, [r["baseline"]["seconds"] for r in results], "k--", label="baseline (one process)")
    memory_ax.plot(rows, [r["baseline"]["peak_mib"] for r in results], "k--", label="baseline (one process)")
    memory_ax.plot(rows, [r["table_mib"] for r in results], ":", color="grey", label="table in memory")
    for ax, label in ((time_ax, "wall seconds"), (memory_ax, "peak resident MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle("Step pipeline on local files and on S3 vs one plain process "
                    "(synthetic table, 35 columns)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def markdown(report: dict[str, Any]) -> str:
    """The table a person reads, with the targets and whether they are met."""
    lines = [
        "# Data scale: the step pipeline on local files vs one plain process (`make bench-scale`)",
        "",
        f"Measured on {report['machine']}, {report['date']}. A synthetic table (30 numeric and 5 text "
        "columns, a text label, about 2 % missing values), as CSV; prepare, train and evaluate run as "
        "their CLIs on local files, one process each, MLflow into SQLite; the baseline reads the same "
        "CSV, splits, fits "
        "the same XGBoost parameters, predicts and scores in one process. Peak memory is each process's "
        "own (`ru_maxrss`, started from a bare launcher so that the benchmark's own memory is not counted).",
        "",
        "| rows | CSV MiB | table MiB | prepare s / MiB | train s / MiB | evaluate s / MiB "
        "| steps s | baseline s / MiB | time ratio | memory ratio | f1 steps / baseline |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        cells = [f"{r['rows']:,}", f"{r['csv_mib']}", f"{r['table_mib']}"]
        cells += [f"{r['steps'][s]['seconds']} / {r['steps'][s]['peak_mib']:.0f}" for s in STEPS]
        cells += [f"{r['steps_seconds']}", f"{r['baseline']['seconds']} / {r['baseline']['peak_mib']:.0f}",
                  f"{r['time_ratio']}", f"{r['memory_ratio']}", f"{r['f1']['steps']} / {r['f1']['baseline']}"]
        lines.append("| " + " | ".join(cells) + " |")
    on_s3 = [r for r in report["results"] if "s3" in r]
    if on_s3:
        lines += ["", "The same steps on S3: the table read from a SeaweedFS server (as the stack's), every "
                  "output written there, runs and the model logged to an MLflow server whose artifacts "
                  "live there; the steps use their own S3 identity.", "",
                  "| rows | prepare s / MiB | train s / MiB | evaluate s / MiB | steps s | vs local files "
                  "| time ratio to baseline | memory ratio | f1 |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in on_s3:
            cells = [f"{r['rows']:,}"]
            on = r["s3"]
            cells += [f"{on['steps'][s]['seconds']} / {on['steps'][s]['peak_mib']:.0f}" for s in STEPS]
            cells += [f"{on['steps_seconds']}", f"{on['steps_seconds'] - r['steps_seconds']:+.1f} s",
                      f"{r['s3']['time_ratio']}", f"{r['s3']['memory_ratio']}", f"{r['s3']['f1']}"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Log-log slope of seconds between the two largest sizes (1 = linear, 2 = quadratic): "
              f"{report['slopes']}", "", "Targets:"]
    lines += [f"- {name}: {'met' if met else 'NOT met'} ({why})"
              for name, (met, why) in report["targets"].items()]
    lines += ["", "![time and memory against rows](scale.png)", ""]
    return "\n".join(lines)


def targets(results: list[dict[str, Any]], found_slopes: dict[str, float]) -> dict[str, tuple[bool, str]]:
    """Each target of the issue, judged where it applies, with the numbers that decided it."""
    judged: dict[str, tuple[bool, str]] = {}
    at = [r for r in results if r["rows"] == TIME_JUDGED_AT_ROWS]
    if at:
        judged["time within 1.3x the baseline at 1M rows"] = (
            bool(at[0]["time_ratio"] <= TIME_TARGET_RATIO), f"{at[0]['time_ratio']}x")
    large = [r for r in results if r["rows"] >= MEMORY_JUDGED_FROM_ROWS]
    if large:
        worst = max(large, key=lambda r: r["memory_ratio"])
        judged["peak memory under 3x the table from 1M rows"] = (
            bool(worst["memory_ratio"] < MEMORY_TARGET_RATIO),
            f"worst {worst['memory_ratio']}x at {worst['rows']:,} rows")
    if found_slopes:
        steepest = max(found_slopes.values())
        judged["nothing quadratic"] = (bool(steepest < 1.5), f"largest slope {steepest}")
    return judged


def main() -> int:
    """Every size, smallest first; the results files at the end."""
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline":
        print(json.dumps(baseline(sys.argv[2])))
        return 0
    sizes = [int(n) for n in os.environ.get("BENCH_SCALE_ROWS", ",".join(map(str, DEFAULT_ROWS))).split(",")]
    results = []
    with ExitStack() as stack:
        services = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ct-bench-scale-s3-")))
        s3 = S3Stack(stack, services) if os.environ.get("BENCH_SCALE_S3", "yes") != "no" else None
        for rows in sizes:
            with tempfile.TemporaryDirectory(prefix="ct-bench-scale-") as tmp:
                results.append(bench_size(rows, Path(tmp), s3))
    found = slopes(results)
    report = {"machine": machine(), "date": dt.date.today().isoformat(), "xgb_params": xgb_params(),
              "results": results, "slopes": found}
    report["targets"] = targets(results, found)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "scale.md").write_text(markdown(report), encoding="utf-8")
    plot(results, RESULTS / "scale.png")
    print(f"bench-scale: wrote {RESULTS / 'scale.md'}; " + "; ".join(
        f"{name}: {'met' if met else 'NOT met'} ({why})" for name, (met, why) in report["targets"].items()))
    return 0 if all(met for met, _ in report["targets"].values()) else 1  # as bench-runs and bench-dag


if __name__ == "__main__":
    raise SystemExit(main())
