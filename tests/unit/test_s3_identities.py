"""The steps' S3 identity, scoped as the stack scopes it: it reads the data and writes runs, nothing more."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline_steps.steps import prepare
from pipeline_steps.steps import publish_data
from pipeline_steps.services import storage
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.errors import RequestRefusedError
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests import services


def as_pipeline(settings: Settings) -> Settings:
    """The same settings with the steps' scoped keys instead of the admin's."""
    return dataclasses.replace(settings, aws_access_key_id=services.PIPELINE_ACCESS_KEY,
                               aws_secret_access_key=services.PIPELINE_SECRET_KEY)


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
