"""The train/test split: a row's side decided by a seeded hash of its own values, not by its neighbours.

Continuous training publishes version after version that share most of their
rows. A split drawn at random over each version's rows (as scikit-learn's
``train_test_split`` draws it) puts a row in the test split of one version and in
the training split of the next, so a Staging model trained on version 1 is later
"tested" on rows it learnt, and no new model can look as good as it (every later
gate stops). Here a row's side depends only on its values and the seed: the
same row is on the same side in every version split with the same seed, and a
version whose rows are merely reordered gives the very same split.

Identical rows are separate observations (in a table of categories most rows
repeat, each with its own label), so each copy is a row of its own: the k-th copy
of a row is identified by its values and k. A version with more copies of a row
keeps the sides of the copies it shares with an older one.

The id of a row is a hash computed over its columns in name order, each turned
into a canonical form first (numbers as float64, so 1 and 1.0 are the same;
booleans as 0/1; dates as nanoseconds; text as text; every missing value alike),
with pandas' column hashes, mixed per row, with the copy number and with the seed
by SplitMix64. A row goes to the test split when its id, read as a fraction of
2**64, is below the test size: about that share of every class, in expectation.
A class too small to land on both sides by chance gets its row with the lowest
fraction moved into the test split (or its highest out of it), so every class is
trained on and tested. Each side is written in id order, so the model never
depends on the file's row order.

Evaluate needs to know which rows a Staging model was trained on: prepare writes
the ids of both sides (:data:`TRAIN_ROWS_FILE`, :data:`TEST_ROWS_FILE`, sorted,
as the sides are), and train logs the training ids with the model. A model split
with another seed (or over other columns) has its ids recomputed over the whole
new version with its seed: exact for distinct rows, approximate for the copies of
a repeated row (which copy is the k-th is arbitrary).
"""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

# The ids of a split's rows, as .npy arrays of sorted uint64 (the training ones logged by train).
TRAIN_ROWS_FILE = "train_rows.npy"
TEST_ROWS_FILE = "test_rows.npy"
# Recorded with the ids: a later change to how rows are identified must not compare apples to pears.
SCHEME = "row-id-v1"
SCHEME_TAG = "split.scheme"
_FRACTION = float(2**64)
_MISSING = "\x00missing"


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over uint64 values (wrapping arithmetic): a cheap, well-mixed hash."""
    with np.errstate(over="ignore"):
        mixed = values + np.uint64(0x9E3779B97F4A7C15)
        mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return mixed ^ (mixed >> np.uint64(31))


def _canonical(column: pd.Series) -> np.ndarray:
    """The column's values in the one form its kind hashes in, whatever dtype a file gave it."""
    if ptypes.is_datetime64_any_dtype(column):
        stamps = pd.to_datetime(column, utc=True)
        return np.where(stamps.isna(), np.nan, stamps.to_numpy(dtype="datetime64[ns]").astype("int64"))
    if ptypes.is_bool_dtype(column) or ptypes.is_numeric_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return column.astype("string").fillna(_MISSING).to_numpy(dtype=object)


def row_ids(frame: pd.DataFrame, columns: list[str], seed: int) -> np.ndarray:
    """A uint64 per row over ``columns`` (order does not matter) and its copy number, seeded."""
    content = np.zeros(len(frame), dtype="uint64")
    for name in sorted(columns, key=str):
        column_hash = pd.util.hash_array(_canonical(frame[name]), categorize=False)
        content = _splitmix64(content ^ column_hash)
    copy = pd.Series(content).groupby(content, sort=False).cumcount().to_numpy(dtype="uint64")
    return _splitmix64(_splitmix64(content ^ _splitmix64(copy)) ^ np.uint64(seed & (2**64 - 1)))


class Split(NamedTuple):
    """The two sides of a split, each in id order, and the ids of their rows (sorted, as the rows are)."""

    train: pd.DataFrame
    test: pd.DataFrame
    train_ids: np.ndarray
    test_ids: np.ndarray


def split(frame: pd.DataFrame, target: str, test_size: float, seed: int) -> Split:
    """Each row to train or test by its own id; every class on both sides."""
    ids = row_ids(frame, list(frame.columns), seed)
    in_test = ids.astype("float64") / _FRACTION < test_size
    labels = frame[target].to_numpy()
    for label in pd.unique(labels):
        rows = np.flatnonzero(labels == label)
        if not in_test[rows].any():
            in_test[rows[np.argmin(ids[rows])]] = True
        if in_test[rows].all():
            in_test[rows[np.argmax(ids[rows])]] = False
    order = np.argsort(ids, kind="stable")
    train_rows, test_rows = order[~in_test[order]], order[in_test[order]]
    return Split(frame.take(train_rows).reset_index(drop=True), frame.take(test_rows).reset_index(drop=True),
                 ids[train_rows], ids[test_rows])


def ids_to_bytes(ids: np.ndarray) -> bytes:
    """The sorted ids as a .npy file's bytes."""
    buffer = io.BytesIO()
    np.save(buffer, np.sort(ids.astype("uint64")), allow_pickle=False)
    return buffer.getvalue()


def ids_from_bytes(payload: bytes) -> np.ndarray:
    """What :func:`ids_to_bytes` wrote."""
    return np.load(io.BytesIO(payload), allow_pickle=False)
