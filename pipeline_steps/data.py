"""Loading, validating, cleaning and splitting a tabular dataset.

Any CSV or Parquet file with a named target column works, binary or multiclass.
Validation runs before anything is written, so a bad file stops the run with a
message that names the file and the column, and leaves earlier outputs alone.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pandas as pd
from pandas.api import types as ptypes

from pipeline_steps.errors import DataValidationError

PARQUET_MAGIC = b"PAR1"
_OTHER_DELIMITERS = (";", "\t", "|", ",")


def md5_hex(data: bytes) -> str:
    """The DVC 3 version id of a file: the md5 of its bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def load_table(data: bytes, name: str, delimiter: str = ",") -> pd.DataFrame:
    """Parse CSV or Parquet (recognised by its magic bytes) into a frame."""
    if not data.strip():
        raise DataValidationError(f"{name} is empty")
    if data[:4] == PARQUET_MAGIC:
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise DataValidationError(f"{name} is not a readable Parquet file: {exc}") from None
    else:
        try:
            frame = pd.read_csv(io.BytesIO(data), sep=delimiter)
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"{name} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError(f"{name} could not be parsed as CSV: {exc}") from None
        _check_delimiter(frame, name, delimiter)
    if frame.empty:
        raise DataValidationError(f"{name} has no data rows")
    return frame


def _check_delimiter(frame: pd.DataFrame, name: str, delimiter: str) -> None:
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    for other in _OTHER_DELIMITERS:
        if other != delimiter and other in header:
            raise DataValidationError(
                f"{name} looks {other!r}-delimited but CSV_DELIMITER is {delimiter!r} "
                f"(the header parsed as one column: {header[:60]!r})"
            )


def validate(frame: pd.DataFrame, target: str, name: str) -> None:
    """Check the frame can be trained on; raise naming the first problem found."""
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:10]))
        raise DataValidationError(
            f"target column {target!r} not found in {name} (columns: {shown})"
        )
    labels = frame[target].dropna()
    if labels.empty:
        raise DataValidationError(f"target column {target!r} in {name} has no values")
    if ptypes.is_bool_dtype(labels) or not ptypes.is_numeric_dtype(labels):
        example = labels[pd.to_numeric(labels, errors="coerce").isna()].head(1).tolist()
        raise DataValidationError(
            f"target column {target!r} in {name} must hold numeric class labels, "
            f"found non-numeric values such as {example[0] if example else labels.iloc[0]!r}"
        )
    if not (labels == labels.round()).all():
        raise DataValidationError(
            f"target column {target!r} in {name} must hold whole-number class labels, "
            f"found fractional values such as {labels[labels != labels.round()].iloc[0]!r}"
        )
    features = frame.drop(columns=[target])
    if features.columns.empty:
        raise DataValidationError(f"{name} has no feature columns besides {target!r}")
    non_numeric = [
        str(c)
        for c in features.columns
        if not (ptypes.is_numeric_dtype(features[c]) or ptypes.is_bool_dtype(features[c]))
    ]
    if non_numeric:
        raise DataValidationError(
            f"feature columns in {name} must be numeric; not numeric: {', '.join(non_numeric)}"
        )
    all_null = [str(c) for c in features.columns if features[c].isna().all()]
    if all_null:
        raise DataValidationError(f"feature columns in {name} are entirely empty: {', '.join(all_null)}")


@dataclass(frozen=True)
class CleanTable:
    """A validated frame with labels encoded 0..k-1, and the original label of each code."""

    frame: pd.DataFrame
    classes: list[int]


def clean(frame: pd.DataFrame, target: str, name: str) -> CleanTable:
    """Drop unlabelled and duplicate rows, encode labels as 0..k-1 (what XGBoost expects)."""
    frame = frame.dropna(subset=[target]).drop_duplicates().reset_index(drop=True)
    frame = frame.astype({c: "int64" for c in frame.columns if ptypes.is_bool_dtype(frame[c])})
    classes = sorted(int(v) for v in frame[target].unique())
    if len(classes) < 2:
        raise DataValidationError(
            f"target column {target!r} in {name} has a single class ({classes}); need at least two"
        )
    counts = frame[target].value_counts()
    if counts.min() < 2:
        rare = int(counts.idxmin())
        raise DataValidationError(
            f"class {rare} of {target!r} in {name} has a single row; "
            "a stratified split needs at least two per class"
        )
    codes = {label: code for code, label in enumerate(classes)}
    frame[target] = frame[target].astype("int64").map(codes).astype("int64")
    return CleanTable(frame=frame, classes=classes)


def split(
    table: CleanTable, target: str, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded, stratified train/test split: the same seed and data give the same split."""
    # Imported here: scikit-learn is only needed once the data has passed validation.
    from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel

    try:
        train, test = train_test_split(
            table.frame, test_size=test_size, random_state=seed, stratify=table.frame[target]
        )
    except ValueError as exc:
        raise DataValidationError(f"cannot split the data with TEST_SIZE={test_size}: {exc}") from None
    return train.reset_index(drop=True), test.reset_index(drop=True)


def to_parquet(frame: pd.DataFrame) -> bytes:
    """Serialise a frame to Parquet bytes, without the pandas index."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    """Read Parquet bytes written by :func:`to_parquet`."""
    return pd.read_parquet(io.BytesIO(data))
