"""Loading, splitting and storing a tabular dataset.

Any CSV or Parquet file with a named target column works, binary or multiclass;
:mod:`pipeline_steps.validation` decides whether it can be trained on, before
anything is written.
"""

from __future__ import annotations

import hashlib
import io

import pandas as pd

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


def split(
    frame: pd.DataFrame, target: str, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded, stratified train/test split: the same seed and data give the same split."""
    # Imported here: scikit-learn is only needed once the data has passed validation.
    from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel

    try:
        train, test = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=frame[target]
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
