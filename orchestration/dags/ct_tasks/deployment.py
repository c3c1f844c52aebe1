"""The deployment's settings, read once from the Airflow containers' environment and params.yaml.

The compose file sets these on every Airflow service; the DAG files and the
task helpers read them from here and nowhere else. The modelling defaults come
from params.yaml (CT_PARAMS_FILE), the file the local pipeline and the steps
read too, under the same rule: a variable that is set wins over the file. Values
a step needs are passed on to its container (`PASSED_SETTINGS`, and the whole
params.yaml as CT_PARAMS, because a step container can mount nothing); the S3
keys only at run time, so they never enter the serialized DAG or the UI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

# In the Airflow image, the compose file mounts the working copy's params.yaml here;
# in a checkout (the DAG tests) it is the repository's.
PARAMS_FILE = Path(os.environ.get("CT_PARAMS_FILE", "").strip()
                   or Path(__file__).resolve().parents[3] / "params.yaml")
PARAMS: dict[str, Any] = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
PARAMS_JSON = json.dumps(PARAMS)  # what every step container gets as CT_PARAMS


def is_true(value: Any) -> bool:
    """A yes/no setting or rendered template: true, 1 or yes (any case) mean yes."""
    return str(value).strip().lower() in ("1", "true", "yes")

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
# Runs of one DAG at a time: one, so that a run's gate compares with what the run before registered.
MAX_ACTIVE_RUNS = int(os.environ.get("CT_MAX_ACTIVE_RUNS", "1"))
# With Celery, the steps that need the most memory go to this queue, served by the workers
# that declare it (CT_WORKER_QUEUES); unset, every task goes to the default queue.
HEAVY_QUEUE = os.environ.get("CT_HEAVY_QUEUE", "").strip()
HEAVY_STEPS = ("tune", "train", "evaluate", "predict")
RUNS_BUCKET = os.environ.get("S3_RUNS_BUCKET", "pipeline-runs")
DATA_BUCKET = os.environ.get("S3_DATA_BUCKET", "dvc-data")


def _setting(name: str, *path: str) -> Any:
    """A modelling setting: its variable when set, else its key in params.yaml (as the steps read it)."""
    value: Any = PARAMS
    for part in path:
        value = value[part]
    return os.environ.get(name, "").strip() or value


DATASET_NAME = str(_setting("DATASET_NAME", "data", "name"))
# The run's id as an S3 path segment (templated): outputs live under runs/<this>/ or predictions/<this>/.
RUN_ID_PATH = "{{ dag_run.run_id | replace(':', '-') | replace('+', '-') }}"
# pipeline_steps.settings.SCORING_SUFFIX: tables to score are published as "<DATASET_NAME>_to_score".
SCORING_DATASET_NAME = f"{DATASET_NAME}_to_score"
# The defaults of the DAG's gate Params.
DEFAULT_THRESHOLD = float(_setting("QUALITY_THRESHOLD", "gate", "threshold"))
DEFAULT_METRIC = str(_setting("QUALITY_METRIC", "gate", "metric"))
DEFAULT_TOLERANCE = float(_setting("QUALITY_TOLERANCE", "gate", "tolerance"))
# The default of the DAG's tune Param: an Optuna study before train (pipeline_steps/tune.py).
DEFAULT_TUNE = is_true(_setting("TUNE_ENABLED", "tune", "enabled"))
# Promotion: approve without a person (an unattended stack), and how long a request waits
# for one before it counts as rejected (a pending approval holds the DAG's next run).
AUTO_APPROVE = is_true(os.environ.get("CT_AUTO_APPROVE", "false"))
APPROVAL_TIMEOUT_HOURS = float(os.environ.get("CT_APPROVAL_TIMEOUT_HOURS", "24"))
# Where a person's browser reaches the MLflow UI (links in the approval request).
MLFLOW_UI_URL = os.environ.get("CT_MLFLOW_UI_URL", "http://localhost:5000").rstrip("/")
# The webhook itself is the Airflow connection NOTIFY_CONN_ID (AIRFLOW_CONN_CT_NOTIFY).
NOTIFY_WEBHOOK_SET = bool(os.environ.get("CT_NOTIFY_WEBHOOK", "").strip())
NOTIFY_CONN_ID = "ct_notify"

# The steps' settings (pipeline_steps/settings.py) passed through to every container. Not
# GIT_COMMIT: each step image carries the commit its code was built from. Not the gate's:
# they come from the run's Params (ct_tasks/steps.py).
PASSED_SETTINGS = (
    "S3_ENDPOINT_URL", "AWS_DEFAULT_REGION", "S3_DATA_BUCKET", "S3_ARTIFACT_BUCKET",
    "S3_RUNS_BUCKET", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MODEL_NAME",
    "DATASET_NAME", "TARGET_COLUMN", "CSV_DELIMITER", "SEED", "TEST_SIZE", "POSITIVE_CLASS",
    "DROP_COLUMNS", "DROP_DUPLICATE_ROWS", "INVALID_NUMBERS",
)
SECRET_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME",
                   "MLFLOW_TRACKING_PASSWORD")

# pipeline_steps.cli.EXIT_PERMANENT: a step failure that no retry can fix. Repeated here
# because Airflow's images do not carry the steps' package; a DAG test checks they agree.
EXIT_PERMANENT = 3


def host_entries(raw: str) -> dict[str, str] | None:
    """``name:address,...`` as Docker's extra hosts; None when blank.

    A worker on another host (make worker) has no stack network to find s3 and mlflow
    on: its step containers get them as /etc/hosts entries (CT_STEP_EXTRA_HOSTS), so
    they use the same names and the same settings as on the stack's own host.
    """
    entries: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        name, _, address = entry.partition(":")  # an IPv6 address has colons; a name has none
        if not name.strip() or not address.strip():
            raise ValueError(f"CT_STEP_EXTRA_HOSTS: {entry!r} is not name:address")
        entries[name.strip()] = address.strip()
    return entries or None


STEP_EXTRA_HOSTS = host_entries(os.environ.get("CT_STEP_EXTRA_HOSTS", ""))


def image(step: str) -> str:
    """The image of a step, at the tag this stack was deployed with."""
    return f"{IMAGE_PREFIX}{step}:{IMAGE_TAG}"


def default_xgb_params() -> dict[str, Any]:
    """params.yaml's train.xgb with the stack's XGB_PARAMS over it: the default of the DAG's Param."""
    raw = os.environ.get("XGB_PARAMS", "").strip()
    return {**PARAMS["train"]["xgb"], **(json.loads(raw) if raw else {})}


def step_environment() -> dict[str, str]:
    """The non-secret settings every step container gets (shown in the UI), params.yaml among them."""
    env = {name: os.environ[name] for name in PASSED_SETTINGS if os.environ.get(name)}
    env["CT_PARAMS"] = PARAMS_JSON
    env["PYTHONUNBUFFERED"] = "1"
    return env


def secret_environment() -> dict[str, str]:
    """S3 keys and the MLflow login: read when the task runs, so they never enter the serialized DAG."""
    return {name: os.environ.get(name, "") for name in SECRET_SETTINGS}
