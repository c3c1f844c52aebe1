"""Step 1: fetch one data version, validate it, clean it and split it into train and test.

The input is either a DVC data version (its md5, fetched from the DVC remote on
S3 and checked against that md5) or a file location. Outputs go under
``--output``: ``train.parquet``, ``test.parquet`` and ``prepare.json``, the
manifest the next steps read. The manifest is written last: a run that fails
validation writes nothing at all.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline_steps import data, storage, validation
from pipeline_steps.versions import table_file
from pipeline_steps.cli import exit_process, make_parser, run_cli
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage

log = logging.getLogger(__name__)


def prepare(
    settings: Settings,
    store: Storage,
    output_uri: str,
    *,
    data_version: str | None = None,
    input_uri: str | None = None,
) -> dict[str, Any]:
    """Turn one data version into a validated, seeded train/test split under ``output_uri``."""
    if (data_version is None) == (input_uri is None):
        raise PipelineError("give exactly one of a data version or an input location")
    source = f"data version {data_version}" if data_version is not None else str(input_uri)
    with table_file(settings, store, md5=data_version, uri=input_uri) as (path, version):
        log.info("preparing %s (%d bytes)", source, path.stat().st_size)
        frame = data.load_table(path, source, settings.csv_delimiter)
    rows_raw = len(frame)
    table = validation.clean_for(settings, frame, source)
    schema = table.schema
    for note in schema.notes:
        log.warning("%s", note)
    # Each frame is let go as soon as the next exists: at a million rows a frame is 300 MB,
    # and holding the raw, the clean and the split tables at once set the step's peak memory.
    del frame
    train, test = data.split(table.frame, settings.target_column, settings.test_size, settings.seed)
    del table

    manifest = {
        "step": "prepare",
        "data_version": version,
        "dataset": settings.dataset_name,
        "source": source,
        "target": settings.target_column,
        "classes": list(schema.classes),
        "features": schema.feature_names,
        "schema": schema.to_dict(),
        "rows_raw": int(rows_raw),
        "rows_train": int(len(train)),
        "rows_test": int(len(test)),
        "seed": settings.seed,
        "test_size": settings.test_size,
        "image": settings.image,
        "train_uri": storage.join(output_uri, "train.parquet"),
        "test_uri": storage.join(output_uri, "test.parquet"),
        "prepared_uri": output_uri,
    }
    rows_train, rows_test = len(train), len(test)
    store.write_bytes(manifest["train_uri"], data.to_parquet(train))
    del train
    store.write_bytes(manifest["test_uri"], data.to_parquet(test))
    del test
    store.write_manifest(output_uri, "prepare", manifest)
    log.info("prepared %s: %d train / %d test rows", version, rows_train, rows_test)
    return {
        **{k: manifest[k] for k in ("data_version", "prepared_uri", "rows_train", "rows_test")},
        "dropped_columns": schema.dropped,
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
    parser = make_parser("prepare", __doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-version", help="DVC md5 of a published data version")
    source.add_argument("--input", help="a CSV or Parquet file: local path or s3:// URI")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)


if __name__ == "__main__":
    exit_process(main())
