"""The scheduler imports the DAG folder's libraries before it forks task processes.

Each task's process parses its DAG file afresh; what the scheduler has imported
already (orchestration/airflow_preloaded.py) it inherits instead of importing again.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys

from tests.dags.conftest import DAGS_FOLDER, REPO

SCHEDULER = REPO / "orchestration" / "airflow_preloaded.py"


def load_scheduler_module():
    spec = importlib.util.spec_from_file_location("airflow_preloaded", SCHEDULER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def libraries_the_dag_folder_imports() -> set[str]:
    """Every module a DAG file or ct_tasks imports, save the standard library, its own and the SDK."""
    own = {path.stem for path in DAGS_FOLDER.rglob("*.py")} | {"ct_tasks"}
    found = set()
    for path in DAGS_FOLDER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return {name for name in found
            if name.split(".")[0] not in own | set(sys.stdlib_module_names) | {"__future__"}
            and not name.startswith("airflow.sdk")}  # the task runner itself: imported before the fork


def test_every_library_the_dag_folder_imports_is_preloaded() -> None:
    preloaded = set(load_scheduler_module().PRELOADED)
    assert libraries_the_dag_folder_imports() <= preloaded, "add them to airflow_preloaded.PRELOADED"


def test_the_preloaded_modules_import_and_the_command_is_airflows() -> None:
    # In a process of its own, as the scheduler's container starts it (its PYTHONPATH holds the package).
    result = subprocess.run([sys.executable, str(SCHEDULER), "version"], capture_output=True, text=True,
                            check=False, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("3.")
