"""Each step is a module with a CLI whose only stdout is the JSON result (Airflow's XCom)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

STEPS = ("check_data", "prepare", "train", "evaluate", "register", "publish_data", "datasets")


def run_module(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", f"pipeline_steps.{module}", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300,
    )


@pytest.mark.parametrize("module", STEPS)
def test_help_works_without_any_setting(module: str, tmp_path: Path) -> None:
    done = run_module(module, "--help", cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert f"python -m pipeline_steps.{module}" in done.stdout


def test_a_step_prints_one_json_line_and_logs_to_stderr(tmp_path: Path) -> None:
    rows = [f"{i},{i % 3},{i % 2}" for i in range(20)]
    (tmp_path / "small.csv").write_text("\n".join(["a,b,target", *rows, rows[0]]) + "\n")
    done = run_module("prepare", "--input", "small.csv", "--output", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert (result["rows_train"], result["rows_test"]) == (16, 4)  # the duplicate row is dropped
    assert "preparing small.csv" in done.stderr
