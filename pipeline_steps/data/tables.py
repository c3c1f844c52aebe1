"""Loading, splitting and storing a tabular dataset.

Any CSV or Parquet file with a named target column works, binary or multiclass;
:mod:`pipeline_steps.data.validation` decides whether it can be trained on, before
anything is written.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline_steps.errors import DataValidationError

if TYPE_CHECKING:
    from pipeline_steps.services.storage import Storage

PARQUET_MAGIC = b"PAR1"
_OTHER_DELIMITERS = (";", "\t", "|", ",")
_HEAD = 1 << 16
_CSV_CHUNK_ROWS = 200_000


def md5_hex(data: bytes) -> str:
    """The DVC 3 version id of a file: the md5 of its bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_md5(path: Path) -> str:
    """:func:`md5_hex` of a file, read in blocks rather than whole."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def load_table(source: bytes | Path, name: str, delimiter: str = ",") -> pd.DataFrame:
    """Parse CSV or Parquet (recognised by its magic bytes), given as bytes or a file, into a frame.

    A file is the cheaper of the two for a large table: its bytes never sit in memory
    beside the frame (a CSV's bytes are about twice the frame they become).
    """
    head = source[:_HEAD] if isinstance(source, bytes) else _head(source)
    if _blank(source, head):
        raise DataValidationError(f"{name} is empty")
    readable = io.BytesIO(source) if isinstance(source, bytes) else source
    if head[:4] == PARQUET_MAGIC:
        try:
            frame = pd.read_parquet(readable)
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise DataValidationError(f"{name} is not a readable Parquet file: {exc}") from None
    else:
        try:
            frame = _read_csv(readable, delimiter)
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"{name} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError(f"{name} could not be parsed as CSV: {exc}") from None
        _check_delimiter(frame, name, delimiter)
    if frame.empty:
        raise DataValidationError(f"{name} has no data rows")
    return frame


def _read_csv(readable: Any, delimiter: str) -> pd.DataFrame:
    # In chunks of rows, concatenated: the C parser's one-shot read of a large file peaks
    # at four times the frame it returns (1.3 GB for a 311 MB frame), chunks at about two.
    # Types are inferred per chunk either way (the parser's own low_memory reading does the
    # same), so a column of numbers and text still ends up as text.
    with pd.read_csv(readable, sep=delimiter, chunksize=_CSV_CHUNK_ROWS) as chunks:
        return pd.concat(chunks, ignore_index=True)


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(_HEAD)


def _blank(source: bytes | Path, head: bytes) -> bool:
    """Nothing but whitespace (or nothing at all), looking no further than the first non-space."""
    if head and not head.isspace():
        return False
    if isinstance(source, bytes):
        return not source or source.isspace()
    with source.open("rb") as file:
        return all(block.isspace() for block in iter(lambda: file.read(_HEAD), b""))


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


def read_frame(store: Storage, uri: str) -> pd.DataFrame:
    """Read a Parquet table written by :func:`to_parquet`, at a path or in S3.

    From a file, not from its bytes: the bytes, Arrow's table and the frame held at once
    made train's peak memory more than 3x its table at 1M rows.
    """
    with store.local_file(uri) as path:
        return pd.read_parquet(path)
