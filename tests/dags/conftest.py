"""DAG tests run in the Airflow environment (orchestration/), not the steps' one.

Airflow reads its configuration when first imported, so a throwaway AIRFLOW_HOME
is set here, before any test module imports it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "orchestration" / "dags"


@pytest.fixture(scope="session")
def dagbag():
    """The DAG folder, parsed as the dag-processor parses it."""
    from airflow.dag_processing.dagbag import DagBag  # pylint: disable=import-outside-toplevel

    return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture(scope="session")
def dag(dagbag):
    """The training DAG."""
    return dagbag.dags["ml_training_pipeline"]


@pytest.fixture(scope="session")
def dag_module() -> ModuleType:
    """The DAG file as a module, for its gate and helper functions."""
    path = DAGS_FOLDER / "ml_training_pipeline.py"
    spec = importlib.util.spec_from_file_location("ml_training_pipeline_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
