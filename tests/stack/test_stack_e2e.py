"""The stack and the DAG, for real: `make up` from nothing, DAG runs through Airflow's REST API.

The tests run in file order on one stack: a first run registers a model, a run
above the reach of any model registers nothing, a run without new data skips,
and a restart keeps every run, model and dataset.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest

from tests.stack.conftest import REPO, Stack, compose, stack_command

STEP_IMAGES = ("check-data", "prepare", "train", "evaluate", "register")
METRICS_REPORT = REPO / "bench" / "results" / "e2e-metrics.json"


def mlflow_client(stack: Stack) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def run_dag(stack: Stack, conf: dict) -> tuple[str, dict]:
    client = stack.airflow()
    client.wait_for_dag()
    client.wait_until_idle()  # e.g. the scheduled run the daily schedule starts with the stack
    started = time.monotonic()
    run_id = client.trigger(conf)
    state = client.follow(run_id, timeout=1200)
    print(f"phase dag run {conf}: {time.monotonic() - started:.0f}s, {state}")
    return state, client.task_states(run_id)


def published_pointer(stack: Stack) -> dict:
    body = stack.s3().get_object(Bucket="dvc-data", Key="published/breast_cancer.json")["Body"]
    return json.loads(body.read())


def staging(stack: Stack):
    return mlflow_client(stack).get_model_version_by_alias("ct-xgboost", "staging")


def test_make_up_prints_where_everything_is(stack: Stack) -> None:
    assert f"Airflow UI   {stack.airflow_url}" in stack.up_output
    assert f"MLflow UI    {stack.mlflow_url}" in stack.up_output
    assert "AIRFLOW_ADMIN_PASSWORD in .env" in stack.up_output
    assert (REPO / ".env.e2e").stat().st_mode & 0o777 == 0o600


def test_every_service_reports_healthy(stack: Stack) -> None:
    health = get_json(f"{stack.airflow_url}/api/v2/monitor/health")
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    with urllib.request.urlopen(f"{stack.mlflow_url}/health", timeout=60) as response:
        assert response.status == 200
    assert stack.s3().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_airflow_needs_a_login_and_then_shows_the_dag(stack: Stack) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.airflow_url}/api/v2/dags", timeout=60)  # pylint: disable=consider-using-with
    assert refused.value.code in (401, 403)
    dag = stack.airflow().wait_for_dag()
    assert dag["dag_id"] == "ml_training_pipeline"
    assert dag["is_paused"] is False


def test_mlflow_answers_its_api_by_service_name_and_from_the_host(stack: Stack) -> None:
    assert mlflow_client(stack).search_experiments() is not None
    probe = compose("exec", "-T", "airflow-scheduler", "python3", "-c",
                    "import urllib.request as u; print(u.urlopen('http://mlflow:5000/api/2.0/mlflow/"
                    "experiments/search?max_results=1').status)")
    assert probe.stdout.strip().endswith("200")


def test_the_buckets_exist_and_the_first_dataset_is_published(stack: Stack) -> None:
    buckets = {b["Name"] for b in stack.s3().list_buckets()["Buckets"]}
    assert {"dvc-data", "mlflow-artifacts", "pipeline-runs"} <= buckets
    md5 = published_pointer(stack)["md5"]
    head = stack.s3().head_object(Bucket="dvc-data", Key=f"dvcstore/files/md5/{md5[:2]}/{md5[2:]}")
    assert head["ContentLength"] > 100_000


def test_a_triggered_run_registers_a_staging_model_with_provenance(stack: Stack) -> None:
    # force: the daily schedule's first run may have trained on this data version already.
    state, tasks = run_dag(stack, {"force": True})
    assert state == "success", tasks
    assert tasks["register_model"] == "success"
    assert tasks["stop_pipeline"] == "skipped"

    version = staging(stack)
    client = mlflow_client(stack)
    run = client.get_run(version.run_id)
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"model.pkl", "metrics.json", "confusion_matrix.png"} <= artifacts
    with tempfile.TemporaryDirectory() as tmp:
        metrics_file = Path(client.download_artifacts(version.run_id, "metrics.json", tmp))
        assert json.loads(metrics_file.read_text(encoding="utf-8")) == run.data.metrics

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    assert version.tags["git_commit"] == commit
    assert version.tags["data_version"] == published_pointer(stack)["md5"]
    assert version.tags["seed"] == "42"
    for step in ("prepare", "train", "evaluate", "register"):
        assert f"ct-{step}:" in version.tags[f"image.{step}"]
        assert "@sha256:" in version.tags[f"image.{step}"]
    # For CI's job summary: what this change did to the model.
    METRICS_REPORT.parent.mkdir(parents=True, exist_ok=True)
    METRICS_REPORT.write_text(json.dumps({
        "model": "ct-xgboost", "version": version.version, "metrics": run.data.metrics,
        "data_version": version.tags["data_version"],
    }, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_a_run_that_cannot_beat_the_threshold_registers_nothing(stack: Stack) -> None:
    before = staging(stack)
    count = len(mlflow_client(stack).search_model_versions("name = 'ct-xgboost'"))
    state, tasks = run_dag(stack, {"threshold": 0.999, "force": True})
    assert state == "success", tasks
    assert tasks["stop_pipeline"] == "success"
    assert tasks["notify"] == "success"
    assert tasks["register_model"] == "skipped"
    after = staging(stack)
    assert (after.version, after.run_id) == (before.version, before.run_id)
    versions = mlflow_client(stack).search_model_versions("name = 'ct-xgboost'")
    assert len(versions) == count


def test_a_run_without_new_data_skips(stack: Stack) -> None:
    state, tasks = run_dag(stack, {})
    assert tasks["check_for_new_data"] == "skipped", tasks
    assert tasks["prepare_data"] == "skipped"
    assert tasks["register_model"] == "skipped"
    assert state == "success"


def test_no_step_container_is_left_behind(stack: Stack) -> None:  # pylint: disable=unused-argument
    for step in STEP_IMAGES:
        left = subprocess.run(
            ["docker", "ps", "-a", "-q", "--filter", f"ancestor=ct-{step}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        assert left == [], f"containers of ct-{step} left: {left}"


def test_a_restart_keeps_runs_models_and_data(stack: Stack) -> None:
    pointer, version = published_pointer(stack), staging(stack)
    stack_command("bash", "-c", "source infra/scripts/stack.sh && compose down --remove-orphans")
    stack_command("infra/scripts/up.sh")
    assert published_pointer(stack) == pointer
    assert staging(stack).version == version.version
    assert stack.airflow().wait_for_dag()["dag_id"] == "ml_training_pipeline"


def test_no_image_carries_a_secret(stack: Stack) -> None:
    secrets = [value for key, value in stack.env.items() if len(value) >= 12]
    assert len(secrets) >= 8
    listing = ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
               "--filter", "reference=ct-*:latest"]
    names = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
    assert len(names) >= 10, names
    for name in names:
        layers = subprocess.run(["docker", "history", "--no-trunc", name], capture_output=True,
                                text=True, check=True).stdout
        config = subprocess.run(["docker", "image", "inspect", name], capture_output=True,
                                text=True, check=True).stdout
        leaked = [key for key, value in stack.env.items() if value in secrets and value in layers + config]
        assert leaked == [], f"{name} carries {leaked}"
