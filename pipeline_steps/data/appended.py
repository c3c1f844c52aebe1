"""Rows from production, labelled by people, appended to the training table as its next version.

The monitor writes the labelled rows of a window that set off its decay trigger as
training rows (the records that were asked, and their true labels) with two key
columns, :data:`KEYS` (the request id and the row's place in it). This module makes
the next data version from them: the newest published version's bytes, then the
rows never appended before, in the table's own columns. Existing rows stay byte for
byte as they were (a CSV is appended to as text), so each keeps its side of the
split, which is a hash of the row itself.

A ledger beside the dataset's pointer (``published/<dataset>/appended_rows.parquet``)
records every key appended and the version it went into: the same labelled row is
never appended twice, whichever window or run offers it again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd

from pipeline_steps.data import tables
from pipeline_steps.errors import DataValidationError, NotFoundError
from pipeline_steps.services import storage
from pipeline_steps.services.storage import Storage
from pipeline_steps.settings import Settings

KEYS = ("ct.request_id", "ct.row")
LEDGER_COLUMNS = [*KEYS, "data_version"]


@dataclass(frozen=True)
class Appending:
    """The rows to append (in the table's columns) and the keys they came with."""

    rows: pd.DataFrame
    keys: pd.DataFrame
    offered: int  # rows offered, appended before or not


def ledger_uri(settings: Settings) -> str:
    """Where the keys of every row appended to the dataset are kept."""
    return storage.join(f"s3://{settings.s3.data_bucket}", "published", settings.dataset_name,
                        "appended_rows.parquet")


def ledger(settings: Settings, store: Storage) -> pd.DataFrame:
    """Every key appended so far, with the data version it went into."""
    try:
        return tables.read_frame(store, ledger_uri(settings))
    except NotFoundError:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in LEDGER_COLUMNS})


def new_rows(offered: pd.DataFrame, appended: pd.DataFrame) -> Appending:
    """The offered rows whose keys are not in the ledger (and each key once)."""
    missing = [name for name in KEYS if name not in offered.columns]
    if missing:
        raise DataValidationError(f"the labelled rows lack their key column(s) {', '.join(missing)}")
    keyed = offered.astype({KEYS[0]: str, KEYS[1]: "int64"}).drop_duplicates(list(KEYS), keep="last")
    seen = appended[list(KEYS)].astype({KEYS[0]: str, KEYS[1]: "int64"})
    marked = keyed.merge(seen.drop_duplicates(), on=list(KEYS), how="left", indicator=True)
    fresh = marked[marked["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)
    return Appending(fresh.drop(columns=list(KEYS)), fresh[list(KEYS)], len(offered))


def appended_payload(current: bytes, name: str, rows: pd.DataFrame, delimiter: str) -> bytes:
    """The current version's bytes with the rows after them, in its columns (CSV as text, Parquet
    as a table); a DataValidationError naming the columns the rows lack."""
    table = tables.load_table(current, name, delimiter)
    missing = [column for column in table.columns if column not in rows.columns]
    if missing:
        raise DataValidationError(f"the labelled rows lack column(s) of {name}: {', '.join(missing)}")
    ordered = rows[list(table.columns)]
    if current[:4] == tables.PARQUET_MAGIC:
        return tables.to_parquet(pd.concat([table, ordered], ignore_index=True))
    text = io.StringIO()
    ordered.to_csv(text, header=False, index=False, sep=delimiter, quoting=csv.QUOTE_MINIMAL,
                   lineterminator="\n")
    separator = b"" if current.endswith(b"\n") else b"\n"
    return current + separator + text.getvalue().encode()


def record(settings: Settings, store: Storage, appended: pd.DataFrame, keys: pd.DataFrame,
           data_version: str) -> None:
    """Add these keys, and the version they went into, to the ledger."""
    added = keys.assign(data_version=data_version)
    store.write_bytes(ledger_uri(settings), tables.to_parquet(
        pd.concat([appended, added], ignore_index=True)[LEDGER_COLUMNS]))
