"""DAG tests run in the Airflow environment (orchestration/), not the steps' one.

Airflow reads its configuration when first imported, so a throwaway AIRFLOW_HOME
is set here, before any test module imports it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "orchestration" / "dags"

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
# Parsed as a stack with a webhook parses it: every task carries its notifier.
os.environ["CT_NOTIFY_WEBHOOK"] = "http://host.docker.internal:9/ct-notify"
# The DAG files import their helpers (ct_tasks) from the DAG folder, as the dag-processor does;
# the repo root gives the steps' CLI contract (pipeline_steps.cli, standard library only).
sys.path[:0] = [str(DAGS_FOLDER), str(REPO)]


@pytest.fixture(scope="session")
def dagbag():
    """The DAG folder, parsed as the dag-processor parses it."""
    from airflow.dag_processing.dagbag import BundleDagBag  # pylint: disable=import-outside-toplevel

    return BundleDagBag(dag_folder=str(DAGS_FOLDER), bundle_path=DAGS_FOLDER)


@pytest.fixture(scope="session")
def dag(dagbag):
    """The training DAG."""
    return dagbag.dags["ml_training_pipeline"]
