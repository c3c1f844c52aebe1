"""A step and a setting declared once are a task of the DAG and a Param of it (tests/declaring.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.declaring import SETTING, STEP, copy_with_throwaways

PARSE = """
import json, pathlib
from airflow.dag_processing.dagbag import BundleDagBag
folder = pathlib.Path('orchestration/dags')
dag = BundleDagBag(dag_folder=str(folder), bundle_path=folder).dags['ml_training_pipeline']
task = dag.get_task('explain')
print(json.dumps({'upstream': sorted(task.upstream_task_ids), 'command': task.command, 'image': task.image,
                  'environment': task.environment['EXPLAIN_TOP_FEATURES'], 'param': dag.params['explain_top']}))
"""


def test_a_declared_step_is_a_task_and_a_declared_setting_a_param_and_what_each_step_is_passed(
    tmp_path: Path,
) -> None:
    copy = copy_with_throwaways(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "orchestration" / "dags"), str(copy)]),
           "CT_PARAMS_FILE": str(copy / "params.yaml"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([sys.executable, "-c", PARSE], cwd=copy, capture_output=True, text=True,
                          check=False, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed["upstream"] == ["evaluate"]
    assert parsed["command"].startswith("--trained s3://pipeline-runs/runs/")
    assert f"/{STEP}" in parsed["command"]
    assert parsed["image"] == f"ct-{STEP}:latest"
    assert parsed["param"] == 5  # params.yaml's explain.top
    assert parsed["environment"] == (
        "{{ '' if params.get('explain_top') is none else params.get('explain_top') }}")
    assert SETTING.upper() == "EXPLAIN_TOP_FEATURES"
