"""Step 1: fetch one data version, validate it, clean it and split it into train and test.

The input is either a DVC data version (its md5, fetched from the DVC remote on
S3 and checked against that md5) or a file location. Outputs go under
``--output``: ``train.parquet``, ``test.parquet``, ``train_rows.npy`` and
``test_rows.npy`` (the ids of the rows of each side; train logs the training
ones with the model) and
``prepare.json``, the manifest the next steps read, with the count of every row
left out and why (``rows``). The manifest is written last: a run that fails
validation writes nothing at all. The split is by each row's own hash
(pipeline_steps/split.py), so a row is on the same side in every data version.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline_steps.data import tables
from pipeline_steps.data import split
from pipeline_steps.services import storage
from pipeline_steps.data import validation
from pipeline_steps.data import versions
from pipeline_steps.data.versions import table_file
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import PrepareResult
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage

log = logging.getLogger(__name__)


def prepare(
    settings: Settings,
    store: Storage,
    output_uri: str,
    *,
    data_version: str | None = None,
    input_uri: str | None = None,
) -> PrepareResult:
    """Turn one data version into a validated, seeded train/test split under ``output_uri``."""
    if (data_version is None) == (input_uri is None):
        raise PipelineError("give exactly one of a data version or an input location")
    source = f"data version {data_version}" if data_version is not None else str(input_uri)
    with table_file(settings, store, md5=data_version, uri=input_uri) as (path, version):
        log.info("preparing %s (%d bytes)", source, path.stat().st_size)
        frame = tables.load_table(path, source, settings.csv_delimiter)
    table = validation.clean_for(settings, frame, source)
    schema, account = table.schema, table.rows
    for note in schema.notes:
        log.warning("%s", note)
    # Each frame is let go as soon as the next exists: at a million rows a frame is 300 MB,
    # and holding the raw, the clean and the split tables at once set the step's peak memory.
    del frame
    sides = split.split(table.frame, settings.target_column, settings.test_size, settings.seed)
    del table

    manifest = {
        **_record(settings, source, version, output_uri),
        "classes": list(schema.classes),
        "features": schema.feature_names,
        "schema": schema.to_dict(),
        "rows": account.to_dict(),
        "rows_raw": account.raw,
        "rows_train": int(len(sides.train)),
        "rows_test": int(len(sides.test)),
        # A version made of production rows names the monitor windows they came from (provenance).
        "feedback": versions.feedback_windows(settings, store, data_version) if data_version else [],
    }
    _write(store, manifest, sides)
    del sides
    store.write_result(output_uri, manifest)
    line = f"{account.line(source)}; {manifest['rows_train']} to train, {manifest['rows_test']} to test"
    if account.notice():
        log.warning("%s", line)
    else:
        log.info("%s", line)
    return {
        **{k: manifest[k] for k in ("data_version", "prepared_uri", "rows_train", "rows_test", "rows")},
        "dropped_columns": schema.dropped,
    }


def _write(store: Storage, manifest: dict[str, Any], sides: split.Split) -> None:
    """Each side as Parquet and its rows' ids, where the manifest says; each frame let go once written
    (at a million rows a frame is 300 MB, and holding both with their bytes set the step's peak)."""
    for side in ("train", "test"):
        store.write_bytes(manifest[f"{side}_uri"], tables.to_parquet(getattr(sides, side)))
        sides = sides._replace(**{side: None})
        store.write_bytes(manifest[f"{side}_rows_uri"], split.ids_to_bytes(getattr(sides, f"{side}_ids")))


def _record(settings: Settings, source: str, version: str, output_uri: str) -> dict[str, Any]:
    """What a prepared split records about where it came from, how it was made and where it is."""
    return {
        "step": "prepare",
        "data_version": version,
        "dataset": settings.dataset_name,
        "source": source,
        "target": settings.target_column,
        "seed": settings.seed,
        "test_size": settings.test_size,
        "drop_duplicate_rows": settings.drop_duplicate_rows,
        "invalid_numbers": settings.invalid_numbers,
        "split": split.SCHEME,
        "image": settings.step_image,
        "train_uri": storage.join(output_uri, "train.parquet"),
        "test_uri": storage.join(output_uri, "test.parquet"),
        "train_rows_uri": storage.join(output_uri, split.TRAIN_ROWS_FILE),
        "test_rows_uri": storage.join(output_uri, split.TEST_ROWS_FILE),
        "prepared_uri": output_uri,
    }


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return prepare(
        settings,
        Storage(settings.s3),
        args.output,
        data_version=args.data_version,
        input_uri=args.input,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-version", help="DVC md5 of a published data version")
    source.add_argument("--input", help="a CSV or Parquet file: local path or s3:// URI")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)
