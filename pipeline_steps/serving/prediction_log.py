"""The prediction log: every prediction, online and batch, as Parquet in one S3 bucket.

One row per predicted row: the request it came in (``request_id``; a batch
scoring run is one request), its position there (``row``), when (``predicted_at``,
UTC), who answered (``source``: ``server`` or ``batch``; ``model_name``,
``model_version``), what was asked (``inputs``: the record as JSON), and the answer
(``prediction``: the label as JSON; ``probabilities``: class -> probability as
JSON; ``no_prediction_reason`` where a batch row has none). JSON text keeps one
schema for every model and version, whatever their columns, so monitoring reads
the whole log as one table.

Files go under ``s3://<S3_PREDICTION_LOG_BUCKET>/predictions/model=<name>/date=<day>/``
(Hive-style partitions: pyarrow and pandas read them as columns). The model
server writes in batches, off the request path (:class:`BufferedLog`); batch
scoring writes its run as one file (:func:`write_now`).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_steps.errors import PipelineError
from pipeline_steps.services.storage import Storage

SERVER, BATCH = "server", "batch"
LOG_PREFIX = "predictions"
# What a request id may be (a client's X-Request-Id, else one made up): safe in a file and a URL.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("row", pa.int64()),
    ("predicted_at", pa.timestamp("us", tz="UTC")),
    ("source", pa.string()),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("inputs", pa.string()),
    ("prediction", pa.string()),
    ("probabilities", pa.string()),
    ("no_prediction_reason", pa.string()),
])
# A server that cannot reach S3 keeps at most this many rows waiting; older ones are dropped (and counted).
MAX_WAITING_ROWS = 200_000
log = logging.getLogger(__name__)
_sequence = itertools.count()


@dataclass(frozen=True)
class Answered:  # pylint: disable=too-many-instance-attributes  # one request's rows, column by column
    """The rows one request (or one batch scoring run) was answered with, ready to log."""

    request_id: str
    predicted_at: datetime
    source: str
    model_name: str
    model_version: str
    inputs: Sequence[str]
    predictions: Sequence[str | None]
    probabilities: Sequence[str | None]
    reasons: Sequence[str | None] | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def columns(self) -> dict[str, Any]:
        """Its rows, column by column, in :data:`SCHEMA`'s order."""
        rows = len(self)
        return {
            "request_id": [self.request_id] * rows,
            "row": list(range(rows)),
            "predicted_at": [self.predicted_at] * rows,
            "source": [self.source] * rows,
            "model_name": [self.model_name] * rows,
            "model_version": [self.model_version] * rows,
            "inputs": list(self.inputs),
            "prediction": list(self.predictions),
            "probabilities": list(self.probabilities),
            "no_prediction_reason": list(self.reasons) if self.reasons is not None else [None] * rows,
        }


def labels_as_json(labels: Sequence[Any]) -> list[str | None]:
    """Each label as JSON (``"yes"``, ``1``, ``true``), None where a row has none; each distinct one once."""
    encoded = {label: json.dumps(label) for label in set(labels) if label is not None}
    return [None if label is None else encoded[label] for label in labels]


def probabilities_as_json(classes: Sequence[Any], probabilities: np.ndarray) -> list[str | None]:
    """Each row's ``{"class": probability}`` as JSON; None where a row has no prediction (NaN)."""
    frame = pd.DataFrame(probabilities, columns=[str(label) for label in classes])
    lines = frame.to_json(orient="records", lines=True, double_precision=15).splitlines()
    empty = np.isnan(probabilities).any(axis=1)
    return [None if none else line for line, none in zip(lines, empty.tolist())]


def table(batches: Sequence[Answered]) -> pa.Table:
    """The rows of these requests as one Arrow table of the log's schema."""
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for batch in batches:
        for name, values in batch.columns().items():
            columns[name].extend(values)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def log_uri(bucket: str, model_name: str, source: str, at: datetime, prefix: str = LOG_PREFIX) -> str:
    """A new file of the log (or, with ``prefix``, of what lies beside it): partitioned by model and
    day, named so no two writers collide."""
    stamp = at.strftime("%Y%m%dT%H%M%S%f")
    writer = f"{socket.gethostname()}-{os.getpid()}-{next(_sequence)}-{uuid.uuid4().hex[:8]}"
    return (f"s3://{bucket}/{prefix}/model={model_name}/date={at:%Y-%m-%d}/"
            f"{source}-{stamp}-{writer}.parquet")


def write_now(store: Storage, bucket: str, batches: Sequence[Answered]) -> list[str]:
    """Write these rows to the log at once, one file per model; the files written."""
    written = []
    for model_name in sorted({batch.model_name for batch in batches}):
        mine = [batch for batch in batches if batch.model_name == model_name]
        buffer = io.BytesIO()
        pq.write_table(table(mine), buffer, compression="zstd")
        uri = log_uri(bucket, model_name, mine[0].source, datetime.now(timezone.utc))
        store.write_bytes(uri, buffer.getvalue())
        written.append(uri)
    return written


class BufferedLog:  # pylint: disable=too-many-instance-attributes  # the buffer and its thread
    """Rows answered, held in memory and written in batches by a thread (not the request's).

    A batch is written every ``flush_seconds``, or as soon as ``flush_rows`` wait, and on
    :meth:`close` (the server's shutdown: ``docker stop`` loses nothing already answered).
    A write that fails keeps its rows for the next; ``on_written(rows)`` and
    ``on_dropped(rows)`` are told what was written and what had to be dropped.
    """

    def __init__(self, store: Storage, bucket: str, *, flush_rows: int, flush_seconds: float,
                 on_written: Callable[[int], None] = lambda rows: None,
                 on_dropped: Callable[[int], None] = lambda rows: None) -> None:
        self._store = store
        self._bucket = bucket
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._waiting: list[Answered] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    @property
    def waiting_rows(self) -> int:
        """Rows answered and not yet written."""
        return self._rows

    def start(self) -> None:
        """Start writing in the background."""
        self._thread.start()

    def append(self, answered: Answered) -> None:
        """Keep a request's rows for the next write (never blocks on S3)."""
        with self._lock:
            self._waiting.append(answered)
            self._rows += len(answered)
            dropped = 0
            while self._rows > MAX_WAITING_ROWS and len(self._waiting) > 1:
                oldest = self._waiting.pop(0)
                self._rows -= len(oldest)
                dropped += len(oldest)
            full = self._rows >= self._flush_rows
        if dropped:
            log.error("the prediction log could not be written for a while: dropped %d rows", dropped)
            self._on_dropped(dropped)
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every row waiting now; the rows written (0 when the write failed: they wait on)."""
        with self._writing:
            with self._lock:
                batches, self._waiting, rows, self._rows = self._waiting, [], self._rows, 0
            if not batches:
                return 0
            try:
                written = write_now(self._store, self._bucket, batches)
            except (PipelineError, OSError, pa.ArrowException) as exc:
                with self._lock:
                    self._waiting[:0] = batches
                    self._rows += rows
                log.warning("the prediction log could not be written (%d rows wait for the next try): %s",
                            rows, exc)
                return 0
            log.info("prediction log: %d rows in %s", rows, ", ".join(written))
            self._on_written(rows)
            return rows

    def close(self, tries: int = 3) -> None:
        """Stop the thread and write what waits (tried a few times: S3 may be restarting too)."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        for _ in range(tries):
            self.flush()
            if not self._rows:
                return
            time.sleep(1.0)
        if self._rows:
            log.error("the prediction log lost %d rows: S3 could not be written at shutdown", self._rows)

    def _run(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                self.flush()
            except Exception:  # pylint: disable=broad-exception-caught  # the thread must live on
                log.exception("writing the prediction log failed")
