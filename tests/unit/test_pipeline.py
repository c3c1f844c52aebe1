"""The steps together, on real S3 and a real MLflow server: what a user checks after a run."""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
from pathlib import Path

import mlflow
import pytest
from PIL import Image

from pipeline_steps.steps import check_data
from pipeline_steps.steps import publish_data
from pipeline_steps.steps import register
from pipeline_steps.services import tracking
from pipeline_steps.data.tables import md5_hex
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import METRICS, Settings, load_settings
from pipeline_steps.services.storage import Storage
from tests.unit.pipeline_run import run_steps


@pytest.fixture
def published(settings: Settings, store: Storage) -> dict:
    """The built-in dataset, pushed to the DVC remote with DVC and pointed to."""
    return publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")


def test_publishing_pushes_the_file_to_the_dvc_remote_and_moves_the_pointer(
    settings: Settings, store: Storage, published: dict
) -> None:
    expected = builtin_csv("breast_cancer")
    assert published["md5"] == md5_hex(expected)
    remote_object = f"{settings.s3.dvc_remote_url}/files/md5/{published['md5'][:2]}/{published['md5'][2:]}"
    assert store.read_bytes(remote_object) == expected
    assert store.read_json(settings.published_pointer_uri)["md5"] == published["md5"]
    assert published["announced"] is False  # no AIRFLOW_API_URL: nothing to tell


def test_with_nothing_published_there_is_no_new_data_and_init_publishes_only_built_in_tables(
    store: Storage, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATASET_NAME", "churn")
    churn = load_settings()
    assert check_data.check_data(churn, store) == {
        "step": "check_data", "dataset": "churn", "latest_version": None, "published_at": None,
        "staging_version": None, "staging_model_version": None, "new_data": False,
    }
    assert publish_data.main(["--if-unpublished"]) == 0
    assert json.loads(capsys.readouterr().out)["md5"] is None
    assert not store.exists(churn.published_pointer_uri)


def test_new_data_is_reported_until_a_staging_model_is_trained_on_it(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    before = check_data.check_data(settings, store)
    assert before["new_data"] is True
    assert before["latest_version"] == published["md5"]
    assert before["staging_version"] is None

    run_steps(settings, store, run_prefix, data_version=published["md5"])

    after = check_data.check_data(settings, store)
    assert after["new_data"] is False
    assert after["staging_version"] == published["md5"]


def test_a_full_run_registers_a_staging_version_with_its_provenance(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    run = run_steps(settings, store, run_prefix, data_version=published["md5"])
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)

    version = client.get_model_version_by_alias(settings.model_name, tracking.STAGING_ALIAS)
    assert version.version == run.registered["version"]
    assert version.current_stage == "Staging"
    assert version.run_id == run.trained["run_id"]
    assert version.tags["data_version"] == published["md5"]
    assert version.tags["git_commit"] == settings.git_commit
    assert version.tags["seed"] == str(settings.seed)
    for step in ("prepare", "train", "evaluate", "register"):
        assert version.tags[f"image.{step}"] == settings.step_image

    mlflow_run = client.get_run(run.trained["run_id"])
    assert mlflow_run.data.tags["mlflow.source.git.commit"] == settings.git_commit
    assert mlflow_run.data.params["seed"] == str(settings.seed)
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id)}
    assert {"model.pkl", "metrics.json", "confusion_matrix.png", "predictions.csv", "roc.json",
            "precision_recall.json"} <= artifacts


def test_a_run_the_quality_gate_stops_registers_nothing_and_says_why(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    strict = dataclasses.replace(settings, quality_threshold=0.999)
    run = run_steps(strict, store, run_prefix, data_version=published["md5"])
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)

    assert run.evaluated["gate"]["decision"] == "stopped"
    assert run.registered["registered"] is False
    assert run.registered["reason"] == run.evaluated["gate"]["reason"]
    assert run.registered["reason"].endswith("does not beat the threshold 0.9990")
    assert client.search_model_versions(f"name = '{settings.model_name}'") == []
    tags = client.get_run(run.trained["run_id"]).data.tags
    assert (tags["gate.decision"], tags["gate.reason"]) == ("stopped", run.registered["reason"])


def test_an_evaluation_without_a_gate_decision_is_not_registered(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    run = run_steps(settings, store, run_prefix, data_version=published["md5"], do_register=False)
    older = {key: value for key, value in run.evaluated.items() if key != "gate"}
    store.write_result(f"{run_prefix}/older", older)
    with pytest.raises(PipelineError, match="has no quality gate decision: evaluate it again"):
        register.register(settings, store, f"{run_prefix}/older")


def test_a_new_staging_version_archives_the_previous_one(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    first = run_steps(settings, store, run_prefix, data_version=published["md5"])
    second = register.register(settings, store, first.evaluated["evaluated_uri"])
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)

    versions = client.search_model_versions(f"name = '{settings.model_name}'")
    stages = {v.version: v.current_stage for v in versions}
    assert stages == {first.registered["version"]: "Archived", second["version"]: "Staging"}
    alias = client.get_model_version_by_alias(settings.model_name, tracking.STAGING_ALIAS)
    assert alias.version == second["version"]


def test_metrics_json_is_what_mlflow_logged_and_the_plot_is_a_real_png(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    run = run_steps(settings, store, run_prefix, data_version=published["md5"], do_register=False)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    run_id = run.trained["run_id"]
    with tempfile.TemporaryDirectory() as tmp:
        metrics_file = Path(client.download_artifacts(run_id, "metrics.json", tmp))
        logged_file = json.loads(metrics_file.read_text(encoding="utf-8"))
        png = Path(client.download_artifacts(run_id, "confusion_matrix.png", tmp)).read_bytes()

    logged_metrics = client.get_run(run_id).data.metrics
    assert set(logged_file) == set(METRICS)
    assert logged_file == {name: logged_metrics[name] for name in METRICS}
    assert store.read_json(run.evaluated["metrics_uri"]) == logged_file
    assert all(0.0 <= value <= 1.0 for value in logged_file.values())
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
    assert store.read_bytes(run.evaluated["plot_uri"]) == png


def test_the_same_seed_and_data_give_the_same_metrics(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    first = run_steps(settings, store, f"{run_prefix}/a", data_version=published["md5"], do_register=False)
    second = run_steps(settings, store, f"{run_prefix}/b", data_version=published["md5"], do_register=False)
    assert first.trained["run_id"] != second.trained["run_id"]
    assert first.evaluated["metrics"] == second.evaluated["metrics"]
    assert store.read_bytes(first.trained["model_uri"]) == store.read_bytes(second.trained["model_uri"])


def test_a_multiclass_table_given_by_location_runs_through(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    source = f"{run_prefix}/input/wine.csv"
    store.write_bytes(source, builtin_csv("wine"))
    run = run_steps(settings, store, run_prefix, input_uri=source)
    assert run.prepared["data_version"] == md5_hex(builtin_csv("wine"))
    assert store.read_json(f"{run_prefix}/prepare/result.json")["classes"] == [0, 1, 2]
    assert set(run.evaluated["metrics"]) == set(METRICS)
    assert run.registered["version"] == "1"


def test_the_stack_init_creates_buckets_and_publishes_only_once(
    settings: Settings, store: Storage, s3_server, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("S3_DATA_BUCKET", "fresh-data")
    monkeypatch.setenv("S3_RUNS_BUCKET", "fresh-runs")
    assert publish_data.main(["--create-buckets", "--if-unpublished"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["announced"] is False
    buckets = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert {"fresh-data", "fresh-runs", settings.s3.artifact_bucket} <= buckets
    assert first["md5"] == md5_hex(builtin_csv("breast_cancer"))

    assert publish_data.main(["--create-buckets", "--if-unpublished"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["already_published"] is True
    assert (second["announced"], second["published_at"]) == (False, first["published_at"])
    pointer = store.read_json("s3://fresh-data/published/breast_cancer.json")
    assert pointer == {k: v for k, v in first.items() if k not in publish_data.NOT_ANNOUNCED}
