"""What one monitoring run looks at: the prediction log and the labels written since the last run.

A window is a span of S3 write times, ``(start, end]``, not of prediction times: a
file is in the window its object was written in, so each file is read by exactly
one run, whenever its rows were answered (the server writes its buffer every few
seconds, and at shutdown). ``end`` lies :data:`SETTLE_SECONDS` before the listing:
a file not yet listed then is written after ``end`` (S3 keeps write times to the
second), so it falls in the next window, never between two.

The window's labels are the labels *received* in it, each joined with the
prediction it names, however old (labels come days after the answer): the live
metric of a window is over the ground truth that arrived in it. The newest label
of a row counts; a label naming no logged row is counted, not used.

The watermark (the last window's end) is a small JSON object beside the log, so
a restart of anything loses nothing: written by the monitor after its run is
recorded, so a run that fails leaves the window to the next one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_steps.errors import NotFoundError
from pipeline_steps.serving import feedback, prediction_log
from pipeline_steps.services.storage import Storage

SETTLE_SECONDS = 10
WATERMARK = "monitor/model={model}/watermark.json"
KEY = ["request_id", "row"]


@dataclass(frozen=True)
class Window:
    """The rows of one window: predictions written in it, and labels received in it with their
    predictions."""

    model_name: str
    start: datetime | None  # exclusive; None: from the first file
    end: datetime  # inclusive
    predictions: pd.DataFrame  # the log's rows (prediction_log.SCHEMA)
    labelled: pd.DataFrame  # request_id, row, label, received_at; model_version, inputs, prediction,
    #                         probabilities of the row it names
    unmatched_labels: int  # labels received that name no logged row
    files: int  # files read (predictions and labels)

    def line(self) -> str:
        """The window in a few words, for the run's outcome line."""
        since = f"since {self.start:%Y-%m-%d %H:%M:%S}" if self.start else "from the first prediction"
        return (f"{len(self.predictions)} predictions and {len(self.labelled)} labelled rows {since} "
                f"to {self.end:%Y-%m-%d %H:%M:%S} UTC")


def written_between(store: Storage, bucket: str, prefix: str, start: datetime | None,
                    end: datetime) -> Iterator[str]:
    """The keys under ``prefix`` whose objects were written in ``(start, end]``."""
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            written = item["LastModified"]
            if (start is None or written > start) and written <= end:
                yield item["Key"]


def read_rows(store: Storage, bucket: str, keys: list[str], schema: pa.Schema) -> pd.DataFrame:
    """These Parquet files as one frame of ``schema`` (empty, with its columns, when there are none)."""
    tables = [pq.read_table(io.BytesIO(store.read_bytes(f"s3://{bucket}/{key}"))) for key in keys]
    if not tables:
        return schema.empty_table().to_pandas()
    return pa.concat_tables([table.cast(schema) for table in tables]).to_pandas()


def read_window(store: Storage, bucket: str, model_name: str, start: datetime | None,
                end: datetime) -> Window:
    """The window ``(start, end]`` of this model's log and labels."""
    model = f"model={model_name}/"
    prediction_keys = list(written_between(store, bucket, f"{prediction_log.LOG_PREFIX}/{model}", start, end))
    label_keys = list(written_between(store, bucket, f"{feedback.FEEDBACK_PREFIX}/{model}", start, end))
    predictions = read_rows(store, bucket, prediction_keys, prediction_log.SCHEMA)
    labels = newest_labels(read_rows(store, bucket, label_keys, feedback.SCHEMA))
    labelled, unmatched = _with_predictions(store, bucket, model_name, labels, end)
    return Window(model_name, start, end, predictions, labelled, unmatched,
                  len(prediction_keys) + len(label_keys))


def newest_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One label per row: the newest sent."""
    return (labels.sort_values("received_at", kind="stable")
            .drop_duplicates(KEY, keep="last").reset_index(drop=True))


def _with_predictions(store: Storage, bucket: str, model_name: str, labels: pd.DataFrame,
                      end: datetime) -> tuple[pd.DataFrame, int]:
    """Each label with the prediction it names (read from every log file up to ``end``); and how many
    labels named none."""
    columns = [*KEY, "label", "received_at", "model_version", "inputs", "prediction", "probabilities"]
    if labels.empty:
        return pd.DataFrame(columns=columns), 0
    prefix = f"{prediction_log.LOG_PREFIX}/model={model_name}/"
    keys = list(written_between(store, bucket, prefix, None, end))
    logged = read_rows(store, bucket, keys, prediction_log.SCHEMA)
    wanted = logged.merge(labels[KEY], on=KEY)[[*KEY, "model_version", "inputs", "prediction",
                                                "probabilities"]]
    joined = labels.merge(wanted.drop_duplicates(KEY, keep="last"), on=KEY, how="left")
    matched = joined["model_version"].notna()
    return joined.loc[matched, columns].reset_index(drop=True), int((~matched).sum())


def window_end(now: datetime | None = None) -> datetime:
    """Where a window listed now may end: :data:`SETTLE_SECONDS` before it."""
    return (now or datetime.now(timezone.utc)) - timedelta(seconds=SETTLE_SECONDS)


def watermark(store: Storage, bucket: str, model_name: str) -> datetime | None:
    """The end of the last window a monitor run recorded (None: none yet)."""
    try:
        found: dict[str, Any] = store.read_json(f"s3://{bucket}/{WATERMARK.format(model=model_name)}")
    except NotFoundError:
        return None
    return datetime.fromisoformat(found["end"])


def save_watermark(store: Storage, bucket: str, window: Window, run_id: str) -> None:
    """Record that ``window`` is done: the next run starts where it ended."""
    store.write_json(f"s3://{bucket}/{WATERMARK.format(model=window.model_name)}",
                     {"end": window.end.isoformat(), "run_id": run_id,
                      "predictions": len(window.predictions), "labelled": len(window.labelled)})
