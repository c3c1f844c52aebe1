"""Batch scoring with the Production model, on real S3 and a real MLflow server.

A table to score is published like training data (without labels) or given by
location; predict writes the table's rows with the predicted label, in the
user's own labels, and each class's probability, and records which model
version, data version and image produced them.
"""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest

from pipeline_steps.data import tables
from pipeline_steps.steps import predict
from pipeline_steps.steps import promote
from pipeline_steps.steps import publish_data
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.errors import DataValidationError
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests.unit.pipeline_run import run_steps


def penguins(settings: Settings) -> Settings:
    return dataclasses.replace(settings, dataset_name="penguins", target_column="species")


def test_with_no_production_model_nothing_is_scored_and_the_result_says_why(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    result = predict.predict(settings, store, f"{run_prefix}/predict", input_uri="s3://dvc-data/any.csv")
    assert result["skip_reason"].startswith(f"no Production model of {settings.model_name} yet")
    assert not store.exists(f"{run_prefix}/predict/{predict.RECORD_FILE}")


def test_a_published_table_is_scored_in_the_users_labels_with_the_production_model(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    settings = penguins(settings)
    table = builtin_csv("penguins", "species")
    source = f"{run_prefix}/input/penguins.csv"
    store.write_bytes(source, table)
    registered = run_steps(settings, store, f"{run_prefix}/train", input_uri=source).registered
    promote.promote(settings, registered["version"], "alice")
    nothing = predict.predict(settings, store, f"{run_prefix}/none")
    assert nothing["skip_reason"].startswith("nothing to score: no table of 'penguins_to_score'")

    to_score = pd.read_csv(io.BytesIO(table)).drop(columns=["species"]).head(40)
    payload = to_score.to_csv(index=False).encode()
    published = publish_data.publish(settings, store, payload, "new_penguins.csv", to_score=True)
    assert published["dataset"] == "penguins_to_score"
    assert store.exists("s3://dvc-data/published/penguins_to_score.json")

    result = predict.predict(settings, store, f"{run_prefix}/predict")
    scored = tables.read_frame(store, result["predictions_uri"])
    assert len(scored) == len(to_score) == result["rows"]
    assert set(scored["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    probabilities = scored[["probability.Adelie", "probability.Chinstrap", "probability.Gentoo"]]
    assert probabilities.sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-5)
    pd.testing.assert_frame_equal(scored[list(to_score.columns)], to_score, check_dtype=False)
    record = store.read_json(f"{run_prefix}/predict/{predict.RECORD_FILE}")
    assert record == result
    assert (record["model_version"], record["data_version"]) == (registered["version"], published["md5"])
    assert record["input"] == f"penguins_to_score version {published['md5']}"
    assert record["image"] == "ct-test:unit"
    assert result["message"] == (f"scored 40 rows of {record['input']} with {settings.model_name} "
                                 f"version {registered['version']}: {result['predictions_uri']}")


def test_a_table_lacking_a_column_the_model_needs_is_refused_naming_it(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    registered = run_steps(settings, store, f"{run_prefix}/train",
                           input_uri=_put(store, run_prefix, builtin_csv("breast_cancer"))).registered
    promote.promote(settings, registered["version"], "alice")
    narrow = pd.read_csv(io.BytesIO(builtin_csv("breast_cancer"))).drop(columns=["target", "mean_area"])
    source = _put(store, run_prefix, narrow.to_csv(index=False).encode(), "narrow.csv")
    with pytest.raises(DataValidationError, match="lacks column\\(s\\) the model was trained on: mean_area"):
        predict.predict(settings, store, f"{run_prefix}/predict", input_uri=source)
    assert not store.exists(f"{run_prefix}/predict/{predict.PREDICTIONS_FILE}")


def _put(store: Storage, prefix: str, payload: bytes, name: str = "table.csv") -> str:
    uri = f"{prefix}/input/{name}"
    store.write_bytes(uri, payload)
    return uri
