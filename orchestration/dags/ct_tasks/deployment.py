"""The deployment's settings, read once from the Airflow containers' environment.

The compose file sets these on every Airflow service; the DAG files and the
task helpers read them from here and nowhere else. Values a step needs are
passed on to its container (`PASSED_SETTINGS`); the S3 keys only at run time,
so they never enter the serialized DAG or the UI.
"""

from __future__ import annotations

import json
import os
from typing import Any

IMAGE_TAG = os.environ.get("CT_IMAGE_TAG", "latest")
IMAGE_PREFIX = os.environ.get("CT_IMAGE_PREFIX", "ct-")
DOCKER_URL = os.environ.get("CT_DOCKER_URL", "unix://var/run/docker.sock")
DOCKER_NETWORK = os.environ.get("CT_DOCKER_NETWORK", "mlops")
STEP_TIMEOUT_MINUTES = int(os.environ.get("CT_STEP_TIMEOUT_MINUTES", "30"))
STEP_RETRIES = int(os.environ.get("CT_STEP_RETRIES", "2"))
STEP_RETRY_DELAY_SECONDS = int(os.environ.get("CT_STEP_RETRY_DELAY_SECONDS", "20"))
# Waiting for data happens only when asked (a Param, or scheduled runs with this set).
SCHEDULED_WAIT_MINUTES = int(os.environ.get("CT_SCHEDULED_WAIT_MINUTES", "0"))
WAIT_POKE_SECONDS = int(os.environ.get("CT_WAIT_POKE_SECONDS", "60"))
RUNS_BUCKET = os.environ.get("S3_RUNS_BUCKET", "pipeline-runs")
DATA_BUCKET = os.environ.get("S3_DATA_BUCKET", "dvc-data")
DATASET_NAME = os.environ.get("DATASET_NAME", "breast_cancer")
# The run's id as an S3 path segment (templated): outputs live under runs/<this>/ or predictions/<this>/.
RUN_ID_PATH = "{{ dag_run.run_id | replace(':', '-') | replace('+', '-') }}"
# pipeline_steps.settings.SCORING_SUFFIX: tables to score are published as "<DATASET_NAME>_to_score".
SCORING_DATASET_NAME = f"{DATASET_NAME}_to_score"
DEFAULT_THRESHOLD = float(os.environ.get("QUALITY_THRESHOLD", "0.85"))
DEFAULT_METRIC = os.environ.get("QUALITY_METRIC", "f1")
# Promotion: approve without a person (an unattended stack), and how long a request waits
# for one before it counts as rejected (a pending approval holds the DAG's next run).
AUTO_APPROVE = os.environ.get("CT_AUTO_APPROVE", "false").strip().lower() in ("1", "true", "yes")
APPROVAL_TIMEOUT_HOURS = float(os.environ.get("CT_APPROVAL_TIMEOUT_HOURS", "24"))
# Where a person's browser reaches the MLflow UI (links in the approval request).
MLFLOW_UI_URL = os.environ.get("CT_MLFLOW_UI_URL", "http://localhost:5000").rstrip("/")
# The webhook itself is the Airflow connection NOTIFY_CONN_ID (AIRFLOW_CONN_CT_NOTIFY).
NOTIFY_WEBHOOK_SET = bool(os.environ.get("CT_NOTIFY_WEBHOOK", "").strip())
NOTIFY_CONN_ID = "ct_notify"

# The steps' settings (pipeline_steps/settings.py) passed through to every container.
PASSED_SETTINGS = (
    "S3_ENDPOINT_URL", "AWS_DEFAULT_REGION", "S3_DATA_BUCKET", "S3_ARTIFACT_BUCKET",
    "S3_RUNS_BUCKET", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MODEL_NAME",
    "DATASET_NAME", "TARGET_COLUMN", "CSV_DELIMITER", "SEED", "TEST_SIZE", "QUALITY_METRIC",
    "POSITIVE_CLASS", "DROP_COLUMNS",
)  # not GIT_COMMIT: each step image carries the commit its code was built from
SECRET_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME",
                   "MLFLOW_TRACKING_PASSWORD")

# pipeline_steps.cli.EXIT_PERMANENT: a step failure that no retry can fix. Repeated here
# because Airflow's images do not carry the steps' package; a DAG test checks they agree.
EXIT_PERMANENT = 3


def image(step: str) -> str:
    """The image of a step, at the tag this stack was deployed with."""
    return f"{IMAGE_PREFIX}{step}:{IMAGE_TAG}"


def default_xgb_params() -> dict[str, Any]:
    """The stack's XGBoost overrides (XGB_PARAMS), the default of the DAG's Param."""
    raw = os.environ.get("XGB_PARAMS", "").strip()
    return json.loads(raw) if raw else {}


def step_environment() -> dict[str, str]:
    """The non-secret settings every step container gets (shown in the UI)."""
    env = {name: os.environ[name] for name in PASSED_SETTINGS if os.environ.get(name)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def secret_environment() -> dict[str, str]:
    """S3 keys and the MLflow login: read when the task runs, so they never enter the serialized DAG."""
    return {name: os.environ.get(name, "") for name in SECRET_SETTINGS}
