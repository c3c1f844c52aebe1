"""Step 6: score a table with the Production model; predictions in the user's labels, as Parquet.

The table is the newest one published to score (``make score FILE=...``, the
dataset ``<DATASET_NAME>_to_score``) or any file given with ``--input``. The model
is ``models:/<name>@production``, whatever promotion or rollback left there.
``--output`` gets ``predictions.parquet``: one row per input row, in order (the
table's own columns, then ``prediction`` in the user's labels,
``probability.<class>`` per class, and ``no_prediction_reason``, which says why a
row that cannot be scored, such as one with text in a number column, has no
prediction), and
``predictions.json``, which records the model version and its run, the data
version (md5 of the table's bytes), the input and the image that scored it. The
same rows go to the prediction log, as the model server's answers do
(pipeline_steps/serving/prediction_log.py): monitoring reads both in one place.
With no Production model, or nothing published to score, the step says so in
its result (``skip_reason``) and scores nothing: Airflow marks the task skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any, ContextManager

import pandas as pd

from pipeline_steps.data import tables
from pipeline_steps.modelling import registry
from pipeline_steps.serving import prediction_log
from pipeline_steps.services import storage
from pipeline_steps.services import tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import PredictResult
from pipeline_steps.modelling.model import LabelledModel
from pipeline_steps.data.rows import UNUSABLE, RowAccount
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from pipeline_steps.data.versions import table_file

PREDICTIONS_FILE = "predictions.parquet"
RECORD_FILE = "predictions.json"
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability."
REASON_COLUMN = "no_prediction_reason"
log = logging.getLogger(__name__)


def predictions_frame(model: LabelledModel, table: pd.DataFrame) -> pd.DataFrame:
    """The table, then the predicted label, each class's probability and why a row has none, row for row."""
    probabilities, reasons = model.scored(table)
    out = table.reset_index(drop=True).copy()
    usable = reasons.isna().to_numpy()
    labels = pd.Series([None] * len(out), dtype=object)
    labels[usable] = model.schema.decode(probabilities[usable].argmax(axis=1)).to_numpy()
    out[PREDICTION_COLUMN] = labels
    for code, label in enumerate(model.schema.classes):
        out[f"{PROBABILITY_PREFIX}{label}"] = probabilities[:, code]
    out[REASON_COLUMN] = reasons.to_numpy()
    return out


def logged_rows(model: LabelledModel, table: pd.DataFrame, scored: pd.DataFrame, request_id: str,
                name: str, version: str) -> prediction_log.Answered:
    """The scored rows as the prediction log keeps them (the model server logs its answers the same way)."""
    columns = [f"{PROBABILITY_PREFIX}{label}" for label in model.schema.classes]
    labels = [None if pd.isna(label) else label for label in scored[PREDICTION_COLUMN].tolist()]
    return prediction_log.Answered(
        request_id=request_id, predicted_at=dt.datetime.now(dt.timezone.utc), source=prediction_log.BATCH,
        model_name=name, model_version=version,
        inputs=table.to_json(orient="records", lines=True, date_format="iso").splitlines(),
        predictions=prediction_log.labels_as_json(labels),
        probabilities=prediction_log.probabilities_as_json(model.schema.classes,
                                                           scored[columns].to_numpy(dtype="float64")),
        reasons=[reason if isinstance(reason, str) else None for reason in scored[REASON_COLUMN].tolist()])


def _log(settings: Settings, store: Storage, rows: prediction_log.Answered) -> dict[str, Any]:
    """Write the rows to the prediction log; the request id they carry and the files written."""
    files = prediction_log.write_now(store, settings.s3_prediction_log_bucket, [rows])
    return {"request_id": rows.request_id, "files": files}


def accounted(scored: pd.DataFrame) -> RowAccount:
    """The rows of a scored table: how many it had, and how many have no prediction."""
    return RowAccount(len(scored)).drop(UNUSABLE, int(scored[REASON_COLUMN].notna().sum()))


def _table_to_score(settings: Settings, store: Storage,
                    input_uri: str | None) -> tuple[ContextManager[tuple[Path, str]], str] | None:
    """The file to score and its md5 (opened with ``with``) and where it came from; None when
    nothing is published."""
    if input_uri:
        return table_file(settings, store, uri=input_uri), input_uri
    pointer_uri = settings.scoring_pointer_uri
    if not store.exists(pointer_uri):
        return None
    pointer = store.read_json(pointer_uri)
    return (table_file(settings, store, md5=pointer["md5"]),
            f"{pointer['dataset']} version {pointer['md5']}")


def predict(settings: Settings, store: Storage, output_uri: str,
            input_uri: str | None = None) -> PredictResult:
    """Score the table with the Production model; write the predictions and their record."""
    client = tracking.connect(settings)
    name = settings.model_name
    version = tracking.version_by_alias(client, name, tracking.PRODUCTION_ALIAS)
    if version is None:
        return {"step": "predict", "skip_reason": (
            f"no Production model of {name} yet: approve a registered version first "
            "(make approve, or Required actions in the Airflow UI)")}
    found = _table_to_score(settings, store, input_uri)
    if found is None:
        return {"step": "predict", "skip_reason": (
            f"nothing to score: no table of {settings.scoring_dataset_name!r} is published "
            "(make score FILE=path/to/table.csv) and no input was given")}
    opened, source = found
    with opened as (path, data_version):
        table = tables.load_table(path, source, settings.csv_delimiter)
    # The version the alias pointed at a moment ago, by number: a move since changes nothing here.
    model = registry.download(f"models:/{name}/{version.version}").model
    scored = predictions_frame(model, table)
    predictions_uri = storage.join(output_uri, PREDICTIONS_FILE)
    store.write_bytes(predictions_uri, tables.to_parquet(scored))
    logged = _log(settings, store, logged_rows(model, table, scored, uuid.uuid4().hex, name,
                                               str(version.version)))
    scored_rows = accounted(scored).kept
    record = {
        "step": "predict",
        "model_name": name,
        "model_version": str(version.version),
        "model_run_id": version.run_id,
        "data_version": data_version,
        "input": source,
        "rows": int(len(scored)),
        "scored_rows": scored_rows,
        "classes": list(model.schema.classes),
        "image": settings.step_image,
        "scored_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "predictions_uri": predictions_uri,
        "prediction_log": logged,
    }
    record["message"] = _outcome(record, scored)
    store.write_json(storage.join(output_uri, RECORD_FILE), record)
    log.info("%s", record["message"])
    return record


def _outcome(record: dict[str, Any], scored: pd.DataFrame) -> str:
    """The one line a user reads: how many rows were scored, by which version, and why some were not."""
    account = accounted(scored)
    counted = (f"{record['rows']} rows" if account.kept == account.raw
               else f"{account.kept} of {record['rows']} rows")
    line = (f"scored {counted} of {record['input']} with {record['model_name']} version "
            f"{record['model_version']}: {record['predictions_uri']}")
    if account.kept < account.raw:
        first = scored[REASON_COLUMN].dropna().iloc[0]
        line += (f"; {account.raw - account.kept} have no prediction, with the reason in "
                 f"{REASON_COLUMN} (the first: {first})")
    return line


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return predict(settings, Storage(settings.s3), args.output, args.input or None)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--input", default="", help="the table to score (s3:// URI or path); "
                        "default: the newest one published to score")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)
