"""Tables are read from files, not from bytes in memory: S3 objects come down to a temporary file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline_steps.data import tables
from pipeline_steps.services import storage
from pipeline_steps.errors import DataValidationError, NotFoundError
from pipeline_steps.services.storage import Storage


def test_an_s3_object_is_read_from_a_temporary_file_that_is_gone_afterwards(
    store: Storage, run_prefix: str
) -> None:
    uri = storage.join(run_prefix, "table.csv")
    store.write_bytes(uri, b"a,label\n1,x\n2,y\n")
    with store.local_file(uri) as path:
        assert path.read_bytes() == b"a,label\n1,x\n2,y\n"
        assert tables.file_md5(path) == tables.md5_hex(path.read_bytes())
    assert not path.exists()


def test_a_local_file_is_used_where_it_is_and_kept(tmp_path: Path, store: Storage) -> None:
    table = tmp_path / "table.csv"
    table.write_bytes(b"a,label\n1,x\n")
    with store.local_file(str(table)) as path:
        assert path == table
    assert table.exists()


@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_missing_file_or_object_is_named(where: str, tmp_path: Path, store: Storage,
                                           run_prefix: str) -> None:
    uri = storage.join(run_prefix, "absent.csv") if where == "s3" else str(tmp_path / "absent.csv")
    with pytest.raises(NotFoundError, match=f"{uri} does not exist"):
        with store.local_file(uri):
            pass


@pytest.mark.parametrize("content", [b"", b"  \n\t\n" * 50_000])
def test_a_file_of_nothing_but_whitespace_is_empty(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match="blank.csv is empty"):
        tables.load_table(path, "blank.csv")


def test_a_table_longer_than_one_chunk_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    rows = 450_000  # more than two chunks of the reader
    path.write_text("n,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(rows)))
    frame = tables.load_table(path, "long.csv")
    assert len(frame) == rows and frame["n"].tolist() == list(range(rows))
    assert list(frame.index) == list(range(rows))


@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_parquet_split_reads_back_as_it_was_written(where: str, tmp_path: Path, store: Storage,
                                                      run_prefix: str) -> None:
    frame = pd.DataFrame({"amount": [1.5, None, 3.0], "plan": ["gold", None, "basic"],
                          "label": ["yes", "no", "yes"]})
    uri = storage.join(run_prefix, "train.parquet") if where == "s3" else str(tmp_path / "train.parquet")
    store.write_bytes(uri, tables.to_parquet(frame))
    pd.testing.assert_frame_equal(tables.read_frame(store, uri), frame)
