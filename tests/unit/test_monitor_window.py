"""A monitor run's window, on a real S3: each log file is read by exactly one run, labels join the
predictions they name however old, and the watermark carries a window's end to the next run."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pipeline_steps.monitoring import window
from pipeline_steps.serving import feedback, prediction_log
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage


def answered(model: str, request_id: str, version: str, labels: list[str]) -> prediction_log.Answered:
    return prediction_log.Answered(
        request_id=request_id, predicted_at=datetime.now(timezone.utc), source=prediction_log.SERVER,
        model_name=model, model_version=version, inputs=['{"x": 1}'] * len(labels),
        predictions=prediction_log.labels_as_json(labels), probabilities=["{}"] * len(labels))


@pytest.fixture
def model() -> str:
    """A model of its own per test: its log holds only what the test writes."""
    return f"window-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bucket(settings: Settings, store: Storage) -> str:
    store.ensure_bucket(settings.s3_prediction_log_bucket)
    return settings.s3_prediction_log_bucket


def send_labels(store: Storage, bucket: str, model: str, labels: list[dict]) -> None:
    feedback.LabelStore(store, bucket).write(model, feedback.labelled(labels, ["yes", "no"], "server"))


def after_a_second() -> datetime:
    """A moment later than every object written so far, by S3's one-second clock."""
    time.sleep(1.1)
    moment = datetime.now(timezone.utc)
    time.sleep(1.1)
    return moment


def test_each_file_is_in_exactly_one_window_and_labels_join_the_predictions_they_name(
        store: Storage, bucket: str, model: str) -> None:
    prediction_log.write_now(store, bucket, [answered(model, "first", "1", ["yes", "no"])])
    first_end = after_a_second()
    first = window.read_window(store, bucket, model, None, first_end)
    assert (len(first.predictions), first.files) == (2, 1) and first.labelled.empty

    # Then: another request, and labels for both (one for the first window's request, one late and changed).
    prediction_log.write_now(store, bucket, [answered(model, "second", "2", ["no"])])
    send_labels(store, bucket, model, [{"request_id": "first", "row": 1, "label": "yes"},
                                {"request_id": "second", "label": "yes"}])
    send_labels(store, bucket, model, [{"request_id": "second", "label": "no"},
                                {"request_id": "never-answered", "label": "no"}])
    second = window.read_window(store, bucket, model, first_end, after_a_second())
    assert list(second.predictions["request_id"]) == ["second"]
    rows = sorted(second.labelled[["request_id", "row", "label", "model_version", "prediction"]]
                  .itertuples(index=False, name=None))
    assert rows == [("first", 1, '"yes"', "1", '"no"'), ("second", 0, '"no"', "2", '"no"')]
    assert second.unmatched_labels == 1
    assert "1 predictions and 2 labelled rows since" in second.line()


def test_a_file_written_after_a_windows_end_is_left_to_the_next_window(
        store: Storage, bucket: str, model: str) -> None:
    end = window.window_end()  # SETTLE_SECONDS ago: what is written now is later
    prediction_log.write_now(store, bucket, [answered(model, "late", "1", ["yes"])])
    assert window.read_window(store, bucket, model, None, end).predictions.empty
    later = window.read_window(store, bucket, model, end, datetime.now(timezone.utc) + timedelta(seconds=2))
    assert list(later.predictions["request_id"]) == ["late"]


def test_the_watermark_is_where_the_last_recorded_window_ended_and_none_before_any(
        store: Storage, bucket: str, model: str) -> None:
    assert window.watermark(store, bucket, model) is None
    end = datetime(2026, 12, 7, 10, 0, 5, tzinfo=timezone.utc)
    empty = window.read_window(store, bucket, model, None, end)
    assert empty.predictions.empty and empty.labelled.empty and empty.files == 0
    window.save_watermark(store, bucket, empty, run_id="run-1")
    assert window.watermark(store, bucket, model) == end
