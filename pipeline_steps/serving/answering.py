"""A prediction request's records, checked against the model's schema, and the model's answers.

A request is a JSON list of records (objects with the training columns, in the
user's types) or a CSV table, read as training reads one. What the model cannot
answer is refused whole, naming the cause (:class:`RequestProblem`, HTTP 422): a
record that lacks a column, a value of the wrong type for its column (JSON: a
number column takes numbers, a true/false column booleans, a date column text;
a text column takes text or numbers), a date that does not parse. A null is a
missing value, as a gap in a table is. A category never seen in training is scored as
missing, as batch scoring does (pipeline_steps.data.schema). Extra fields are
ignored, and logged with the record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.data import tables
from pipeline_steps.data.schema import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC, TableSchema
from pipeline_steps.errors import DataValidationError
from pipeline_steps.modelling.model import LabelledModel
from pipeline_steps.text import some

JSON_TYPES = "application/json"
CSV_TYPES = ("text/csv", "application/csv")
# What a JSON value of each kind of column may be (besides null).
_ALLOWED: dict[str, tuple[type, ...]] = {
    NUMERIC: (int, float), BOOLEAN: (bool,), DATETIME: (str,), CATEGORICAL: (str, int, float, bool)}
_WANTED = {NUMERIC: "a number", BOOLEAN: "true or false", DATETIME: "a date as text",
           CATEGORICAL: "text"}
# Unseen categories are expected online and go to the prediction log; no warning per request.
logging.getLogger("pipeline_steps.data.schema").setLevel(logging.ERROR)


class RequestProblem(ValueError):
    """A request the model cannot answer: the HTTP status and one line naming the cause."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    """The rows to answer: as a frame the schema reads, and each record as JSON (for the log)."""

    frame: pd.DataFrame
    records: list[str]


def parse(body: bytes, content_type: str, schema: TableSchema, delimiter: str) -> Request:
    """The request's rows, checked against the schema; :class:`RequestProblem` when they cannot be
    answered."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in CSV_TYPES:
        return _from_csv(body, schema, delimiter)
    if media not in (JSON_TYPES, ""):
        raise RequestProblem(415, f"send the records as {JSON_TYPES} (a list of objects) or as text/csv, "
                                  f"not {media}")
    try:
        records = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestProblem(422, f"the body is not JSON: {exc}") from None
    return _from_records(records, schema)


def _from_records(records: Any, schema: TableSchema) -> Request:
    if not isinstance(records, list):
        raise RequestProblem(422, "send a JSON list of records (objects with the model's columns), "
                                  f"not a JSON {type(records).__name__}")
    if not records:
        raise RequestProblem(422, "the list of records is empty")
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestProblem(422, f"record {row} is a JSON {type(record).__name__}, not an object "
                                      "of column: value")
    for feature in schema.features:
        allowed = _ALLOWED[feature.kind]
        for row, record in enumerate(records):
            if feature.name not in record:
                raise RequestProblem(422, f"record {row} lacks column {feature.name!r} (the model reads "
                                          f"{some(schema.feature_names)})")
            value = record[feature.name]
            if value is not None and (not isinstance(value, allowed)
                                      or (isinstance(value, bool) and bool not in allowed)):
                raise RequestProblem(422, f"column {feature.name!r} must hold {_WANTED[feature.kind]}; "
                                          f"record {row} has {json.dumps(value)}")
    # Column by column, each as its kind reads it (numbers as floats, None a missing value):
    # a tenth of what pandas takes to infer a frame from records.
    frame = pd.DataFrame({
        feature.name: (np.array([np.nan if (value := record[feature.name]) is None else value
                                 for record in records], dtype="float64")
                       if feature.kind == NUMERIC else
                       pd.Series([record[feature.name] for record in records], dtype=object))
        for feature in schema.features})
    return Request(frame, [json.dumps(record, separators=(",", ":")) for record in records])


def _from_csv(body: bytes, schema: TableSchema, delimiter: str) -> Request:
    try:
        frame = tables.load_table(body, "the CSV body", delimiter)
    except DataValidationError as exc:
        raise RequestProblem(422, str(exc)) from None
    missing = [name for name in schema.feature_names if name not in frame.columns]
    if missing:
        raise RequestProblem(422, f"the table lacks column(s) the model reads: {some(missing)}")
    return Request(frame, frame.to_json(orient="records", lines=True, date_format="iso").splitlines())


def score(model: LabelledModel, request: Request) -> np.ndarray:
    """The class probabilities of every row; a value its column's kind cannot hold (text in a number
    column, a date that does not parse) refuses the request, naming the column and the record."""
    probabilities, reasons = model.scored(request.frame)
    bad = reasons.dropna()
    if len(bad):
        raise RequestProblem(422, f"record {bad.index[0]}: {bad.iloc[0]}"
                                  + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    return probabilities


def answers(schema: TableSchema, probabilities: np.ndarray) -> tuple[list[Any], list[dict[str, float]]]:
    """Each row's label (the most probable class, in the user's labels) and its class probabilities."""
    classes = list(schema.classes)
    keys = [str(label) for label in classes]
    labels = [classes[int(code)] for code in probabilities.argmax(axis=1)]
    return labels, [dict(zip(keys, map(float, row))) for row in probabilities.tolist()]
