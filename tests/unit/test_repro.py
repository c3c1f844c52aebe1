"""`dvc repro` on a fresh copy of the repository runs the whole pipeline on local files.

No Airflow, no Docker, no S3: MLflow falls back to its embedded SQLite store
(./mlflow.db), and the last stage registers the model there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow


def _fresh_copy(repo_root: Path, target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = repo_root / name
        if source.is_file() and name.startswith((".dvc/", "dvc.yaml", ".dvcignore", "pipeline_steps/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)


def test_dvc_repro_runs_every_stage_and_registers_a_model(repo_root: Path, tmp_path: Path) -> None:
    _fresh_copy(repo_root, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["PYTHONPATH"] = str(tmp_path)

    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    registered = json.loads((tmp_path / "work/register/register.json").read_text())
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
