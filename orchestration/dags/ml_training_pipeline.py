"""ml_training_pipeline: continuous training of an XGBoost model, one container per step.

This file only wires containers together: it holds no ML code and imports
nothing heavy, because the dag-processor parses it every few seconds. Each step
runs its own image (tagged with the commit the stack was deployed from) over the
Docker socket, on the stack's network, and hands the next step a small JSON
result (XCom); every byte of data goes through S3 under a run-scoped prefix.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    PokeReturnValue,
    chain,
)

DAG_ID = "ml_training_pipeline"
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
log = logging.getLogger(__name__)

# Deployment settings, read from the Airflow containers' environment (set by the compose file).
IMAGE_TAG = os.environ.get("CT_IMAGE_TAG", "latest")
IMAGE_PREFIX = os.environ.get("CT_IMAGE_PREFIX", "ct-")
DOCKER_URL = os.environ.get("CT_DOCKER_URL", "unix://var/run/docker.sock")
DOCKER_NETWORK = os.environ.get("CT_DOCKER_NETWORK", "mlops")
SENSOR_POKE_SECONDS = int(os.environ.get("CT_SENSOR_POKE_SECONDS", "60"))
SENSOR_TIMEOUT_SECONDS = int(os.environ.get("CT_SENSOR_TIMEOUT_SECONDS", "600"))
STEP_TIMEOUT_MINUTES = int(os.environ.get("CT_STEP_TIMEOUT_MINUTES", "30"))
STEP_RETRIES = int(os.environ.get("CT_STEP_RETRIES", "2"))
RUNS_BUCKET = os.environ.get("S3_RUNS_BUCKET", "pipeline-runs")
DATA_BUCKET = os.environ.get("S3_DATA_BUCKET", "dvc-data")
DATASET_NAME = os.environ.get("DATASET_NAME", "breast_cancer")
DEFAULT_THRESHOLD = float(os.environ.get("QUALITY_THRESHOLD", "0.85"))
DEFAULT_METRIC = os.environ.get("QUALITY_METRIC", "f1")

# The steps' settings (pipeline_steps/settings.py) passed through to every container.
PASSED_SETTINGS = (
    "S3_ENDPOINT_URL", "AWS_DEFAULT_REGION", "S3_DATA_BUCKET", "S3_ARTIFACT_BUCKET",
    "S3_RUNS_BUCKET", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MODEL_NAME",
    "DATASET_NAME", "TARGET_COLUMN", "CSV_DELIMITER", "SEED", "TEST_SIZE", "QUALITY_METRIC",
    "XGB_PARAMS",
)  # not GIT_COMMIT: each step image carries the commit its code was built from
SECRET_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

# Published by `pipeline_steps.publish_data`; an event on it starts a run.
DATA_ASSET = Asset(
    name=f"{DATASET_NAME}_data", uri=f"s3://{DATA_BUCKET}/published/{DATASET_NAME}.json"
)
DATA_VERSION = "{{ ti.xcom_pull(task_ids='check_for_new_data')['latest_version'] }}"
RUN_PREFIX = (
    f"s3://{RUNS_BUCKET}/runs/"
    "{{ dag_run.run_id | replace(':', '-') | replace('+', '-') }}"
)


def image(step: str) -> str:
    """The image of a step, at the tag this stack was deployed with."""
    return f"{IMAGE_PREFIX}{step}:{IMAGE_TAG}"


def step_environment() -> dict[str, str]:
    """The non-secret settings every step container gets (shown in the UI)."""
    env = {name: os.environ[name] for name in PASSED_SETTINGS if os.environ.get(name)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def secret_environment() -> dict[str, str]:
    """S3 keys: read when the task runs, so they never enter the serialized DAG."""
    return {name: os.environ.get(name, "") for name in SECRET_SETTINGS}


class StepOperator(DockerOperator):
    """A pipeline step in its own container; records the exact image it ran (its digest)."""

    def execute(self, context: Any) -> Any:
        self._private_environment = secret_environment()  # the operator's own attribute for them
        image_id = self.cli.inspect_image(self.image)["Id"]
        self.environment = {**self.environment, "STEP_IMAGE": f"{self.image}@{image_id}"}
        return super().execute(context)


def step_task(task_id: str, step: str, command: str) -> StepOperator:
    """A DockerOperator for one step, with the stack's network, retries and timeouts."""
    return StepOperator(
        task_id=task_id,
        image=image(step),
        command=command,
        docker_url=DOCKER_URL,
        network_mode=DOCKER_NETWORK,
        environment=step_environment(),
        mount_tmp_dir=False,
        auto_remove="force",  # also removes the container when the task is killed
        retries=STEP_RETRIES,
        retry_delay=timedelta(seconds=20),
        retry_exponential_backoff=True,
        execution_timeout=timedelta(minutes=STEP_TIMEOUT_MINUTES),
        do_xcom_push=True,
    )


def run_check_data() -> dict[str, Any]:
    """Run the check-data image once and return its JSON result."""
    import docker  # pylint: disable=import-outside-toplevel  # only when the sensor pokes

    client = docker.DockerClient(base_url=DOCKER_URL)
    ref = image("check-data")
    image_id = client.images.get(ref).id
    env = {**step_environment(), **secret_environment(), "STEP_IMAGE": f"{ref}@{image_id}"}
    container = client.containers.run(ref, network=DOCKER_NETWORK, environment=env, detach=True)
    try:
        status = container.wait(timeout=300)
        output = container.logs(stdout=True, stderr=False).decode().strip()
        if status.get("StatusCode") != 0:
            errors = container.logs(stdout=False, stderr=True).decode().strip().splitlines()
            raise RuntimeError(f"check_data failed: {errors[-1] if errors else status}")
    finally:
        container.remove(force=True)
    return json.loads(output.splitlines()[-1])


def poke_for_new_data(params: dict[str, Any]) -> PokeReturnValue:
    """Done when a data version newer than the Staging model's is published, or on force."""
    result = run_check_data()
    done = bool(result["new_data"] or params.get("force"))
    log.info(
        "latest data %s, staging trained on %s, force=%s",
        result["latest_version"], result["staging_version"], params.get("force"),
    )
    return PokeReturnValue(is_done=done, xcom_value=result)


def decide(evaluation: dict[str, Any], threshold: float, metric: str) -> tuple[bool, str]:
    """The quality gate: beat the threshold and do not fall below the Staging model."""
    value = float(evaluation["metrics"][metric])
    if not value > threshold:
        return False, f"{metric}={value:.4f} does not beat the threshold {threshold:.4f}"
    staging = evaluation.get("staging") or {}
    staging_value = (staging.get("metrics") or {}).get(metric)
    if staging_value is not None and value < float(staging_value):
        return False, (
            f"{metric}={value:.4f} falls below the Staging model "
            f"(version {staging.get('version')}: {float(staging_value):.4f})"
        )
    return True, f"{metric}={value:.4f} beats {threshold:.4f} and the Staging model"


def choose_branch(ti: Any, params: dict[str, Any]) -> str:
    """Branch callable: register_model when the gate passes, stop_pipeline otherwise."""
    raw = ti.xcom_pull(task_ids="evaluate_model")
    evaluation = json.loads(raw) if isinstance(raw, str) else raw
    passed, reason = decide(evaluation, float(params["threshold"]), params["metric"])
    log.info("quality gate: %s", reason)
    ti.xcom_push(key="reason", value=reason)
    return "register_model" if passed else "stop_pipeline"


def notify(ti: Any, dag_run: Any) -> str:
    """Say why no model was registered: in the task log and, if configured, to a webhook."""
    reason = ti.xcom_pull(task_ids="quality_gate", key="reason")
    message = f"{DAG_ID} run {dag_run.run_id}: no model registered: {reason}"
    log.warning(message)
    webhook = os.environ.get("CT_NOTIFY_WEBHOOK")
    if webhook:
        body = json.dumps({"text": message}).encode()
        request = urllib.request.Request(
            webhook, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            log.info("notified %s: HTTP %s", re.sub(r"//[^/@]*@", "//", webhook), response.status)
    return message


with DAG(
    dag_id=DAG_ID,
    description="Train, evaluate and (if good enough) register an XGBoost model",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("@daily", timezone="UTC"), assets=[DATA_ASSET]
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ct", "xgboost"],
    params={
        "threshold": Param(DEFAULT_THRESHOLD, type="number", minimum=0, maximum=1,
                           description="the metric must beat this to register"),
        "metric": Param(DEFAULT_METRIC, type="string", enum=METRICS,
                        description="metric the quality gate compares"),
        "force": Param(False, type="boolean",
                       description="train even when no new data version is published"),
    },
    doc_md=__doc__ + f"""
### Flow
`check_for_new_data` (sensor, reschedule mode: waits for a data version newer than the
Staging model's, skips the run at its timeout; `force=true` trains anyway) →
`prepare_data` → `train_model` → `evaluate_model` → `quality_gate`:
- the metric beats `threshold` and does not fall below the Staging model → `register_model`
  (new version in the MLflow registry with the `staging` alias and its provenance tags);
- otherwise → `stop_pipeline` → `notify` (task log, and `CT_NOTIFY_WEBHOOK` if set).

Runs daily and whenever a new data version is published (Asset `{DATA_ASSET.uri}`).
Outputs of a run: `s3://{RUNS_BUCKET}/runs/<run_id>/<step>/`.
""",
) as dag:
    check_for_new_data = PythonSensor(
        task_id="check_for_new_data",
        python_callable=poke_for_new_data,
        mode="reschedule",
        poke_interval=SENSOR_POKE_SECONDS,
        timeout=SENSOR_TIMEOUT_SECONDS,
        soft_fail=True,  # no new data by the timeout: the run is skipped, not failed
    )
    prepare_data = step_task(
        "prepare_data", "prepare",
        f"--data-version {DATA_VERSION} --output {RUN_PREFIX}/prepare",
    )
    train_model = step_task(
        "train_model", "train", f"--prepared {RUN_PREFIX}/prepare --output {RUN_PREFIX}/train"
    )
    evaluate_model = step_task(
        "evaluate_model", "evaluate", f"--trained {RUN_PREFIX}/train --output {RUN_PREFIX}/evaluate"
    )
    quality_gate = BranchPythonOperator(task_id="quality_gate", python_callable=choose_branch)
    register_model = step_task(
        "register_model", "register",
        f"--evaluated {RUN_PREFIX}/evaluate --output {RUN_PREFIX}/register",
    )
    stop_pipeline = EmptyOperator(task_id="stop_pipeline")
    notify_task = PythonOperator(task_id="notify", python_callable=notify)

    chain(check_for_new_data, prepare_data, train_model, evaluate_model, quality_gate)
    chain(quality_gate, [register_model, stop_pipeline])
    chain(stop_pipeline, notify_task)
