"""The monitor step on real S3 and MLflow: a window of the prediction log and its labels becomes an
MLflow run of the model's monitoring experiment, with its triggers and their reasons.

Evidently runs only in the drift image (pandas<3): here its measure is replaced by a
summary the test chooses, and what the step handed it is checked.
"""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
from datetime import datetime

import pandas as pd
import pytest

from pipeline_steps.data import drift, tables, versions
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.data.versions import dvc_object_uri
from pipeline_steps.monitoring import window
from pipeline_steps.serving import feedback
from pipeline_steps.services import tracking
from pipeline_steps.services.storage import Storage
from pipeline_steps.settings import Settings
from pipeline_steps.steps import monitor_production, predict, publish_data
from tests.unit.pipeline_run import point_production_at, run_steps, train_version

LABELLED = 40


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window may end as its run lists: :func:`monitor` keeps writes out of that second."""
    monkeypatch.setattr(window, "SETTLE_SECONDS", 0)


def monitor(settings: Settings, store: Storage, output: str) -> dict:
    """A monitor run, a second (S3's clock) after the last write and before the next."""
    time.sleep(1.1)
    result = monitor_production.monitor_production(settings, store, output)
    time.sleep(1.1)
    return dict(result)


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Evidently's measure replaced: 3 of 4 columns drifted; the frames it was given, kept."""
    given = []

    def measure(reference: pd.DataFrame, current: pd.DataFrame, _schema: object) -> tuple:
        given.append((reference, current))
        return drift.DriftSummary(4, 3, 0.75, ("bill_length_mm", "bill_depth_mm", "body_mass_g")), b"<html/>"

    monkeypatch.setattr(drift, "measure", measure)
    return given


def serve_and_score(settings: Settings, store: Storage, prefix: str) -> dict:
    """A Production version trained on a published data version, and a table scored with it (the
    scoring run's rows go to the prediction log)."""
    version = train_version(settings, store, prefix)
    data_version = tracking.get_run(tracking.connect(settings), tracking.connect(settings).get_model_version(
        settings.model_name, version).run_id).data.tags[tracking.TAG_DATA_VERSION]
    store.write_bytes(dvc_object_uri(settings, data_version), builtin_csv("penguins", "species"))
    point_production_at(settings, version)
    to_score = f"{prefix}/input/to_score.csv"
    table = pd.read_csv(io.BytesIO(builtin_csv("penguins", "species"))).dropna().head(120)
    store.write_bytes(to_score, table.drop(columns=["species"]).to_csv(index=False).encode())
    return predict.predict(settings, store, f"{prefix}/predict", input_uri=to_score)


def wrong_labels(settings: Settings, store: Storage, scored: dict, rows: int) -> list[str]:
    """Labels that say the model was wrong on the first ``rows`` rows; the labels sent."""
    predicted = tables.read_frame(store, scored["predictions_uri"])["prediction"].head(rows)
    classes = scored["classes"]
    labels = [classes[(classes.index(label) + 1) % len(classes)] for label in predicted]
    request_id = scored["prediction_log"]["request_id"]
    sent = [{"request_id": request_id, "row": row, "label": label} for row, label in enumerate(labels)]
    feedback.LabelStore(store, settings.s3_prediction_log_bucket).write(
        settings.model_name, feedback.labelled(sent, classes, "server"))
    return labels


def test_a_window_of_drifted_inputs_and_wrong_answers_is_recorded_and_sets_off_both_triggers(
        penguins: Settings, store: Storage, run_prefix: str,
        measured: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:
    scored = serve_and_score(penguins, store, run_prefix)
    labels = wrong_labels(penguins, store, scored, LABELLED)

    result = monitor(penguins, store, f"{run_prefix}/monitor")

    assert (result["rows"], result["labelled_rows"], result["unmatched_labels"]) == (120, LABELLED, 0)
    assert [trigger["kind"] for trigger in result["triggers"]] == ["drift", "decay"]
    assert result["live_metrics"]["f1"] == 0.0 and result["live_metrics"]["accuracy"] == 0.0
    assert sum(result["class_shares"].values()) == pytest.approx(1.0)
    assert "3 of 4 columns drifted (75%)" in result["message"]
    assert f"live f1 0.0000 on {LABELLED} labelled rows is below 0.8500" in result["message"]
    # Evidently was handed the training data without its label, and the records as they were asked.
    reference, current = measured[0]
    assert "species" not in reference.columns and len(current) == 120
    assert set(current.columns) == set(reference.columns)
    # The window is an MLflow run of the model's monitoring experiment, its report an artifact.
    client = tracking.connect(penguins)
    run = client.get_run(result["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == f"{penguins.model_name}-monitoring"
    assert run.data.metrics["drift_share"] == 0.75 and run.data.metrics["labelled_rows"] == LABELLED
    assert run.data.tags["model_version"] == scored["model_version"]
    assert {a.path for a in client.list_artifacts(result["run_id"])} == {"drift_report.html", "window.json"}
    # The labelled rows, as training rows: the records asked, with their true labels.
    rows = tables.read_frame(store, result["labelled_uri"])
    assert list(rows["species"]) == labels and len(rows.columns) == len(current.columns) + 3
    assert list(rows["ct.row"]) == list(range(LABELLED))


def test_the_next_run_with_nothing_new_measures_nothing_and_says_so(
        penguins: Settings, store: Storage, run_prefix: str,
        measured: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:
    serve_and_score(penguins, store, run_prefix)
    first = monitor(penguins, store, f"{run_prefix}/monitor-1")
    assert first["rows"] == 120 and first["triggers"][0]["kind"] == "drift"
    second = monitor(penguins, store, f"{run_prefix}/monitor-2")
    assert second["skip_reason"].startswith(
        f"nothing new in the prediction log of {penguins.model_name} since "), second
    assert len(measured) == 1
    # Drift alone publishes nothing: the publishing task after it says so.
    assert publish_data.append_labelled(penguins, store, f"{run_prefix}/monitor-1")["skip_reason"] == (
        "no decay trigger")


def test_a_decayed_window_is_published_once_and_the_model_trained_on_it_names_that_window(
        penguins: Settings, store: Storage, run_prefix: str,
        measured: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:  # pylint: disable=unused-argument
    settings = dataclasses.replace(penguins, dataset_name=f"penguins_{uuid.uuid4().hex[:8]}")
    first = publish_data.publish(settings, store, builtin_csv("penguins", "species"), "penguins.csv")
    scored = serve_and_score(settings, store, run_prefix)
    wrong_labels(settings, store, scored, LABELLED)
    found = monitor(settings, store, f"{run_prefix}/monitor")

    published = publish_data.append_labelled(settings, store, f"{run_prefix}/monitor")
    assert (published["appended_rows"], published["appended_to"]) == (LABELLED, first["md5"])
    assert published["rows"] == first["rows"] + LABELLED
    window_record = {"monitor_run": found["run_id"], "model_version": scored["model_version"],
                     "start": None, "end": found["window_end"], "rows": LABELLED}
    assert versions.feedback_windows(settings, store, published["md5"]) == [window_record]
    # The same window handed on again (a retried task, a lost watermark) publishes nothing.
    again = publish_data.append_labelled(settings, store, f"{run_prefix}/monitor")
    assert again["skip_reason"].startswith(f"0 of the {LABELLED} labelled rows were not appended before")
    assert store.read_json(settings.published_pointer_uri)["md5"] == published["md5"]

    anything_registers = dataclasses.replace(settings, quality_threshold=0.0, quality_tolerance=1.0)
    registered = run_steps(anything_registers, store, f"{run_prefix}/retrain",
                           data_version=published["md5"]).registered
    assert registered is not None
    version = tracking.connect(settings).get_model_version(settings.model_name, registered["version"])
    assert version.tags["data_version"] == published["md5"]
    assert version.tags["feedback_windows"] == (f"monitor run {found['run_id']} ({LABELLED} rows, first to "
                                                f"{found['window_end']})")


def test_every_window_adds_its_figures_to_one_timeline_run_that_mlflow_charts(
        penguins: Settings, store: Storage, run_prefix: str,
        measured: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:
    serve_and_score(penguins, store, f"{run_prefix}/a")
    first = monitor(penguins, store, f"{run_prefix}/monitor-1")
    predict.predict(penguins, store, f"{run_prefix}/predict-2",
                    input_uri=f"{run_prefix}/a/input/to_score.csv")
    second = monitor(penguins, store, f"{run_prefix}/monitor-2")
    assert second["rows"] == 120
    client = tracking.connect(penguins)
    experiment = client.get_run(first["run_id"]).info.experiment_id
    [timeline] = client.search_runs([experiment], filter_string="tags.`ct.monitor.timeline` = 'true'")
    history = client.get_metric_history(timeline.info.run_id, "rows")
    assert [(point.step, point.value) for point in history] == [(0, 120.0), (1, 120.0)]
    assert [point.value for point in client.get_metric_history(timeline.info.run_id, "drift_share")] == [
        0.75, 0.75]
    assert history[1].timestamp == int(datetime.fromisoformat(second["window_end"]).timestamp() * 1000)
    assert len(measured) == 2


def test_a_window_with_too_few_rows_measures_nothing_and_leaves_them_to_the_next(
        penguins: Settings, store: Storage, run_prefix: str,
        measured: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:
    serve_and_score(penguins, store, run_prefix)
    demanding = dataclasses.replace(penguins, monitor_min_rows=500)
    result = monitor(demanding, store, f"{run_prefix}/monitor")
    assert "120 predictions and 0 labelled rows from the first prediction" in result["skip_reason"]
    assert "fewer than MONITOR_MIN_ROWS (500)" in result["skip_reason"]
    assert window.watermark(store, penguins.s3_prediction_log_bucket, penguins.model_name) is None
    assert not measured


def test_with_no_production_model_there_is_nothing_to_monitor(
        penguins: Settings, store: Storage, run_prefix: str) -> None:
    result = monitor(penguins, store, f"{run_prefix}/monitor")
    assert result["skip_reason"] == (f"no Production model of {penguins.model_name} yet: "
                                     "nothing is served to monitor")
