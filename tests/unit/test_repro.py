"""`dvc repro` on a fresh copy of the repository runs the whole pipeline on local files.

No Airflow, no Docker, no S3: MLflow falls back to its embedded SQLite store
(./mlflow.db), and the last stage registers the model there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest


def _fresh_copy(repo_root: Path, target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = repo_root / name
        if source.is_file() and name.startswith((".dvc/", "dvc.yaml", ".dvcignore", "params.yaml",
                                                 "pipeline_steps/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)


@dataclass
class Reproduced:
    """A fresh copy of the repository after `dvc repro`, and how to run dvc in it."""

    folder: Path
    env: dict[str, str]

    def dvc(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    folder = tmp_path_factory.mktemp("repro")
    _fresh_copy(Path(__file__).resolve().parents[2], folder)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["PYTHONPATH"] = str(folder)
    env.update(GIT_AUTHOR_NAME="ct", GIT_AUTHOR_EMAIL="ct@example.org",
               GIT_COMMITTER_NAME="ct", GIT_COMMITTER_EMAIL="ct@example.org")
    done = Reproduced(folder, env).dvc("repro")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return Reproduced(folder, env)


def test_dvc_repro_runs_every_stage_and_registers_a_model(reproduced: Reproduced) -> None:
    tmp_path = reproduced.folder
    registered = json.loads((tmp_path / "work/register/result.json").read_text())
    metrics = json.loads((tmp_path / "work/evaluate/metrics.json").read_text())
    assert (tmp_path / "work/train/model.pkl").stat().st_size > 0
    assert (tmp_path / "work/evaluate/confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version_by_alias("ct-xgboost", "staging")
    assert str(version.version) == registered["version"]
    logged = client.get_run(version.run_id).data.metrics
    # The run holds metrics.json's values, and the same again as challenger.* (no champion yet).
    assert {name: value for name, value in logged.items() if "." not in name} == metrics
    assert {name: logged[f"challenger.{name}"] for name in metrics} == metrics
    assert (tmp_path / "dvc.lock").is_file()
    assert json.loads((tmp_path / "work/tune/result.json").read_text())["enabled"] is False  # off by default


def test_dvc_plots_draws_the_confusion_matrix_and_the_curves_from_the_evaluate_stage(
    reproduced: Reproduced, tmp_path: Path
) -> None:
    done = reproduced.dvc("plots", "show", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout)["data"]
    assert sorted(shown) == ["Confusion matrix (test split)", "Precision-recall", "ROC"]
    html = reproduced.dvc("plots", "show", "-o", str(tmp_path / "plots"))
    assert html.returncode == 0, html.stderr[-3000:]
    page = (tmp_path / "plots" / "index.html").read_text()
    assert page.count("vega") >= 3 and "Confusion matrix" in page
    rows = (reproduced.folder / "work/evaluate/predictions.csv").read_text().splitlines()
    report = json.loads((reproduced.folder / "work/evaluate/classification_report.json").read_text())
    assert rows[0] == "actual,predicted"
    assert len(rows) - 1 == report["macro avg"]["support"]  # one row per test row


def _experiments(reproduced: Reproduced) -> dict[str, dict[str, str]]:
    """`dvc exp show --csv`: each named experiment's row, params and metrics side by side."""
    done = reproduced.dvc("exp", "show", "--csv", "--no-pager")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    return {row["Experiment"] or row["rev"]: row for row in rows}


def test_dvc_exp_run_sets_a_parameter_and_exp_show_lists_params_and_metrics_side_by_side(
    reproduced: Reproduced,
) -> None:
    folder = reproduced.folder
    (folder / ".gitignore").write_text("mlflow.db\n__pycache__/\n")
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=folder, env=reproduced.env, check=True)
    done = reproduced.dvc("exp", "run", "--name", "deeper", "--set-param", "train.xgb.max_depth=6")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    shown = _experiments(reproduced)
    baseline, deeper = shown["master"], shown["deeper"]
    assert (baseline["train.xgb.max_depth"], deeper["train.xgb.max_depth"]) == ("4", "6")
    for row in (baseline, deeper):
        assert 0.5 < float(row["f1"]) <= 1 and float(row["roc_auc"]) > 0.5
        assert (row["gate.metric"], row["seed"], row["data.name"]) == ("f1", "42", "breast_cancer")
    trained = json.loads((folder / "work/train/result.json").read_text())
    assert trained["xgb_params"]["max_depth"] == 6  # the step read the parameter DVC set
    changed = reproduced.dvc("params", "diff", "--json")
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert json.loads(changed.stdout)["params.yaml"] == {
        "train.xgb.max_depth": {"old": 4, "new": 6, "diff": 2}}


def test_a_local_run_that_misses_the_threshold_registers_nothing_and_says_why(
    reproduced: Reproduced,
) -> None:
    store = f"sqlite:///{reproduced.folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    versions_before = client.search_model_versions("name='ct-xgboost'")
    done = reproduced.dvc("exp", "run", "--name", "strict", "--set-param", "gate.threshold=0.999")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    registered = json.loads((reproduced.folder / "work/register/result.json").read_text())
    assert registered["registered"] is False
    assert re.fullmatch(r"f1=0\.\d{4} does not beat the threshold 0\.9990", registered["reason"])
    assert f"no model registered: {registered['reason']}" in done.stdout + done.stderr
    assert len(client.search_model_versions("name='ct-xgboost'")) == len(versions_before)
    evaluated = json.loads((reproduced.folder / "work/evaluate/result.json").read_text())
    assert evaluated["gate"]["decision"] == "stopped"
    assert client.get_run(evaluated["run_id"]).data.tags["gate.reason"] == registered["reason"]


def test_the_tune_stage_is_off_by_default_and_dvc_exp_run_turns_it_on(reproduced: Reproduced) -> None:
    folder = reproduced.folder
    done = reproduced.dvc("exp", "run", "--name", "tuned", "--set-param", "tune.enabled=true",
                          "--set-param", "tune.trials=3")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    tuned = json.loads((folder / "work/tune/result.json").read_text())
    trained = json.loads((folder / "work/train/result.json").read_text())
    assert (tuned["enabled"], tuned["trials"]) == (True, 3)
    assert trained["tune_run_id"] == tuned["run_id"]
    assert {k: trained["xgb_params"][k] for k in tuned["best_params"]} == tuned["best_params"]
    baseline = _experiments(reproduced)["master"]
    assert baseline["tune.enabled"] == "False"  # the baseline ran with tuning off
