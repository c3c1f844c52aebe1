"""One definition of each thing: a step and a setting declared once reach everything derived from them.

A throwaway step and a throwaway setting are declared in a copy of the project, as
docs/architecture.md says (tests/declaring.py): then the generated files, the image
list and the settings have them, with nothing else edited. The DAG's side is
tests/dags/test_declarations.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.declaring import SETTING, STEP, copy_with_throwaways


def run(copy: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(copy)})


def test_a_declared_step_is_a_dvc_stage_an_image_and_a_command(tmp_path: Path) -> None:
    copy = copy_with_throwaways(tmp_path)
    stale = subprocess.run([sys.executable, "-m", "pipeline_steps.tools.generate", "--check"], cwd=copy,
                           capture_output=True, text=True, check=False,
                           env={**os.environ, "PYTHONPATH": str(copy)})
    assert stale.returncode == 1 and "dvc.yaml" in stale.stderr and ".env.example" in stale.stderr
    run(copy, "-m", "pipeline_steps.tools.generate")
    stage = yaml.safe_load((copy / "dvc.yaml").read_text())["stages"][STEP]
    assert stage["cmd"] == f"python -m pipeline_steps {STEP} --trained work/train --output work/{STEP}"
    assert stage["params"] == ["explain"]
    assert "work/train" in stage["deps"] and f"pipeline_steps/steps/{STEP}.py" in stage["deps"]
    images = run(copy, "-m", "pipeline_steps.pipeline", "images").stdout
    assert f"{STEP.replace('_', '-')} evaluate {STEP}" in images
    result = json.loads(run(copy, "-m", "pipeline_steps", STEP, "--trained", "work/train",
                            "--output", "x").stdout)
    assert result == {"step": STEP, "trained": "work/train", "top": 5}  # params.yaml's explain.top


def test_a_declared_setting_is_read_documented_and_generated(tmp_path: Path) -> None:
    copy = copy_with_throwaways(tmp_path)
    run(copy, "-m", "pipeline_steps.tools.generate")
    name = SETTING.upper()
    assert f"# {name}=" in (copy / ".env.example").read_text()
    assert f"| `{name}` |" in (copy / "README.md").read_text()
    read = run(copy, "-c", "from pipeline_steps.settings import load_settings; "
                           f"print(load_settings({{'{name}': '9'}}).{SETTING})").stdout.strip()
    assert read == "9"
    refused = subprocess.run([sys.executable, "-c", "from pipeline_steps.settings import load_settings; "
                              f"load_settings({{'{name}': '0'}})"], cwd=copy, capture_output=True, text=True,
                             check=False, env={**os.environ, "PYTHONPATH": str(copy)})
    assert f"{name} must be at least 1, got '0'" in refused.stderr
