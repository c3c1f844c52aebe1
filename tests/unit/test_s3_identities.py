"""The stack's scoped S3 identities, as the compose file scopes them: the steps read the data, write runs
and read the prediction log; the publisher writes the data and reads a monitor run's rows; nothing more."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pipeline_steps.steps import prepare
from pipeline_steps.steps import publish_data
from pipeline_steps.services import storage
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.errors import RequestRefusedError
from pipeline_steps.monitoring import window
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests import services


def signing_as(settings: Settings, identity: str) -> Settings:
    """The same settings with one of the stack's scoped identities' keys instead of the admin's."""
    access, secret = services.SCOPED_KEYS[identity]
    return dataclasses.replace(settings, aws_access_key_id=access, aws_secret_access_key=secret)


def as_pipeline(settings: Settings) -> Settings:
    """The same settings with the steps' scoped keys instead of the admin's."""
    return signing_as(settings, "PIPELINE")


def test_the_pipeline_identity_reads_the_prediction_log_and_keeps_the_monitors_watermark_there(
        settings: Settings, store: Storage) -> None:
    key = f"predictions/model={uuid.uuid4().hex}/date=2026-01-01/a.parquet"
    store.write_bytes(f"s3://prediction-log/{key}", b"rows")
    scoped = Storage(as_pipeline(settings).s3)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert list(window.written_between(scoped, "prediction-log", key.rsplit("/", 2)[0], None, later)) == [key]
    assert scoped.read_bytes(f"s3://prediction-log/{key}") == b"rows"
    scoped.write_json("s3://prediction-log/monitor/model=m/watermark.json", {"end": later.isoformat()})


def test_the_publisher_reads_a_monitor_runs_rows_and_writes_only_the_data(
        settings: Settings, store: Storage, run_prefix: str) -> None:
    store.write_bytes(f"{run_prefix}/labelled_rows.parquet", b"rows")
    scoped = Storage(signing_as(settings, "PUBLISHER").s3)
    assert scoped.read_bytes(f"{run_prefix}/labelled_rows.parquet") == b"rows"
    with pytest.raises(RequestRefusedError, match="^S3 at .* refused access to s3://pipeline-runs/"):
        scoped.write_bytes(f"{run_prefix}/x", b"x")
    scoped.write_bytes("s3://dvc-data/identity-check.txt", b"x")


def test_the_pipeline_identity_reads_the_data_and_writes_its_run(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    published = publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")
    scoped = as_pipeline(settings)
    prepared = prepare.prepare(scoped, Storage(scoped.s3), storage.join(run_prefix, "prepare"),
                               data_version=published["md5"])
    manifest = store.read_result(prepared["prepared_uri"])
    assert store.exists(manifest["train_uri"]) and store.exists(manifest["test_uri"])
    assert manifest["data_version"] == published["md5"]


def test_the_pipeline_identity_cannot_write_the_dvc_remote(settings: Settings, store: Storage) -> None:
    pointer = store.read_json(settings.published_pointer_uri) if store.exists(
        settings.published_pointer_uri) else None
    scoped = as_pipeline(settings)
    refusal = r"^S3 at .* refused access to s3://dvc-data/.*AccessDenied"
    with pytest.raises(RequestRefusedError, match=refusal):
        publish_data.publish(scoped, Storage(scoped.s3), builtin_csv("breast_cancer"), "again.csv")
    after = store.read_json(settings.published_pointer_uri) if store.exists(
        settings.published_pointer_uri) else None
    assert after == pointer  # nothing was published


def test_the_pipeline_identity_cannot_read_the_mlflow_artifacts(settings: Settings) -> None:
    scoped = as_pipeline(settings)
    with pytest.raises(RequestRefusedError, match="^S3 at .* refused access to s3://mlflow-artifacts/"):
        Storage(scoped.s3).exists("s3://mlflow-artifacts/artifacts/anything")
