"""Labelled production rows become the next data version: the published bytes, then the rows never
appended before (real S3 and DVC). No row goes in twice; a failed publish loses none."""

from __future__ import annotations

import dataclasses
import io
import uuid

import pandas as pd
import pytest

from pipeline_steps.data import appended
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.data.versions import fetched_version
from pipeline_steps.errors import DataValidationError, ServiceUnreachableError
from pipeline_steps.services.storage import Storage
from pipeline_steps.settings import Settings
from pipeline_steps.steps import publish_data


@pytest.fixture
def dataset(penguins: Settings) -> Settings:
    """The penguins table under a name of its own, its first version published."""
    settings = dataclasses.replace(penguins, dataset_name=f"penguins_{uuid.uuid4().hex[:8]}")
    publish_data.publish(settings, Storage(settings.s3), builtin_csv("penguins", "species"), "penguins.csv")
    return settings


def labelled(store: Storage, uri: str, request: str, rows: range) -> str:
    """Rows of the table as the monitor writes them: training columns, the true label, their keys."""
    table = pd.read_csv(io.BytesIO(builtin_csv("penguins", "species"))).iloc[list(rows)]
    keyed = table.assign(**{"ct.request_id": request, "ct.row": list(range(len(table)))})
    store.write_bytes(uri, keyed.to_parquet(index=False))
    return uri


def published_bytes(settings: Settings, store: Storage) -> bytes:
    with fetched_version(settings, store, store.read_json(settings.published_pointer_uri)["md5"]) as path:
        return path.read_bytes()


def test_rows_are_appended_after_the_published_bytes_and_never_twice(
        dataset: Settings, store: Storage, run_prefix: str) -> None:
    first = published_bytes(dataset, store)
    offered = labelled(store, f"{run_prefix}/labelled-1.parquet", "request-a", range(40))
    done = publish_data.append_rows(dataset, store, offered, minimum=30)
    assert (done["appended_rows"], done["offered_rows"]) == (40, 40)
    assert done["message"].endswith("plus 40 labelled production rows; its event starts a training run")
    second = published_bytes(dataset, store)
    assert second.startswith(first) and second.count(b"\n") == first.count(b"\n") + 40
    assert done["md5"] != done["appended_to"]

    # The same 40 again, with 5 new ones: 5 are too few, and nothing is published.
    again = labelled(store, f"{run_prefix}/labelled-2.parquet", "request-a", range(45))
    skipped = publish_data.append_rows(dataset, store, again, minimum=30)
    assert skipped["skip_reason"] == ("5 of the 45 labelled rows were not appended before: fewer than "
                                      "MONITOR_MIN_LABELLED_ROWS (30); no data version published")
    assert published_bytes(dataset, store) == second
    assert len(appended.ledger(dataset, store)) == 40


def test_a_publish_that_fails_after_the_ledger_was_written_loses_no_row(
        dataset: Settings, store: Storage, run_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    offered = labelled(store, f"{run_prefix}/labelled.parquet", "request-b", range(35))

    def unreachable(*_args: object, **_kwargs: object) -> dict:
        raise ServiceUnreachableError("dvc push failed: the network went away")

    with monkeypatch.context() as patched:
        patched.setattr(publish_data, "publish", unreachable)
        with pytest.raises(ServiceUnreachableError):
            publish_data.append_rows(dataset, store, offered, minimum=30)
    assert len(appended.ledger(dataset, store)) == 35  # recorded, under a version never published
    done = publish_data.append_rows(dataset, store, offered, minimum=30)
    assert done["appended_rows"] == 35


def test_rows_that_lack_a_column_of_the_table_are_refused_naming_it(
        dataset: Settings, store: Storage, run_prefix: str) -> None:
    uri = labelled(store, f"{run_prefix}/labelled.parquet", "request-c", range(40))
    store.write_bytes(uri, pd.read_parquet(io.BytesIO(store.read_bytes(uri)))
                      .drop(columns=["island"]).to_parquet(index=False))
    with pytest.raises(DataValidationError, match="the labelled rows lack column.s. of penguins.csv: island"):
        publish_data.append_rows(dataset, store, uri, minimum=30)
