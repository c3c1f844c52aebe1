"""Ground truth for the prediction log: the true label of an answered row, stored beside the log.

A label names its row by the request id the answer carried (``request_id``) and
the row's place in that request (``row``: 0 for the first, so a one-record request
needs none), as the prediction log does. The label is checked against the model's
classes and stored as JSON, as the log stores ``prediction``, so monitoring compares
the two as they are. A label sent again for the same row is stored again: the
newest (``received_at``) is the one that counts.

Files go under ``s3://<S3_PREDICTION_LOG_BUCKET>/feedback/model=<name>/date=<day>/``,
written at once (a request for labels is answered once they are on S3): the model
server's ``POST /feedback`` and ``make feedback FILE=labels.csv`` both come here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_steps.serving.answering import RequestProblem
from pipeline_steps.serving.prediction_log import REQUEST_ID, labels_as_json, log_uri
from pipeline_steps.services.storage import Storage

FEEDBACK_PREFIX = "feedback"
SERVER_SOURCE = "server"  # what sent the labels: the model server's POST /feedback (make feedback uses it)
SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("row", pa.int64()),
    ("label", pa.string()),
    ("received_at", pa.timestamp("us", tz="UTC")),
    ("source", pa.string()),
])
MAX_ROW = 1_000_000  # no request holds more rows: a larger number is a mistake, not a row


def labelled(records: Any, classes: Sequence[Any], source: str) -> pa.Table:
    """The labels of a JSON body (a list of ``{"request_id", "label", "row"?}``) as a table of
    :data:`SCHEMA`; a :class:`RequestProblem` (422) naming the first record that is not one.

    A label is one of ``classes`` (the model's, in the user's labels), given as itself or as
    its text (a CSV file's ``1`` for the class 1), so it is stored as the log stores predictions.
    """
    if not isinstance(records, list) or not records:
        raise RequestProblem(422, "send a JSON list of labels: "
                                  '[{"request_id": "...", "label": ..., "row": 0}, ...]')
    by_text = {str(label): label for label in classes}
    ids, rows, labels = [], [], []
    for place, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestProblem(422, f"label {place} is not an object with request_id and label")
        request_id, label, row = record.get("request_id"), record.get("label"), record.get("row", 0)
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            raise RequestProblem(422, f"label {place} needs request_id: the id an answer carried "
                                      f"(got {request_id!r})")
        if label is None or str(label) not in by_text:
            raise RequestProblem(422, f"label {place} ({label!r}) is not one of the model's classes "
                                      f"{list(by_text)}")
        if isinstance(row, str) and row.strip().isdigit():
            row = int(row)
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < MAX_ROW:
            raise RequestProblem(422, f"label {place}: row is the record's place in its request "
                                      f"(0 for the first), not {row!r}")
        ids.append(request_id)
        rows.append(row)
        labels.append(by_text[str(label)])
    received = datetime.now(timezone.utc)
    return pa.Table.from_pydict({
        "request_id": ids, "row": rows, "label": labels_as_json(labels),
        "received_at": [received] * len(ids), "source": [source] * len(ids),
    }, schema=SCHEMA)


@dataclass(frozen=True)
class LabelStore:
    """Where a model's labels are written: the prediction log's bucket, beside the predictions."""

    store: Storage
    bucket: str

    def write(self, model_name: str, labels: pa.Table) -> str:
        """Write these labels as one file; its URI."""
        buffer = io.BytesIO()
        pq.write_table(labels, buffer, compression="zstd")
        source = labels.column("source")[0].as_py() if labels.num_rows else "empty"
        uri = log_uri(self.bucket, model_name, source, datetime.now(timezone.utc), prefix=FEEDBACK_PREFIX)
        self.store.write_bytes(uri, buffer.getvalue())
        return uri
