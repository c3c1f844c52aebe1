"""Step 1b: has the data drifted since the Staging model's? An Evidently report and a one-line summary.

Compares the new data version, as prepare split it (train and test together, the
features and the label), with the data version the Staging model was trained on,
fetched from the DVC remote; both are read through the new version's schema, so
each column is compared as the kind it is trained as. Writes ``drift.json`` (the summary) and
``drift_report.html`` (Evidently's report) to ``--output``; evaluate logs both to
the new run and the summary goes into the gate's reason. Drift informs and does
not block, unless MAX_DRIFT_SHARE is set and more than that share of the
columns drifted: then the result carries ``skip_reason`` and Airflow skips the
rest of the run, which registers nothing.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import pandas as pd

from pipeline_steps.data import tables
from pipeline_steps.data import drift
from pipeline_steps.services import storage
from pipeline_steps.services import tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import CheckDriftResult
from pipeline_steps.errors import NotFoundError
from pipeline_steps.data.schema import TableSchema
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from pipeline_steps.data.versions import fetched_version

SUMMARY_FILE = "drift.json"
REPORT_FILE = "drift_report.html"
log = logging.getLogger(__name__)


def _not_measured(manifest: dict[str, Any], reason: str) -> dict[str, Any]:
    log.info("data drift not measured: %s", reason)
    return {"step": "check_drift", "data_version": manifest["data_version"], "drift": None,
            "drift_line": f"data drift not measured: {reason}"}


def check_drift(settings: Settings, store: Storage, prepared_uri: str, output_uri: str) -> CheckDriftResult:
    """Measure drift against the Staging model's data version; write the summary and the report.

    Above MAX_DRIFT_SHARE (a run's ``max_drift_share`` Param), the result carries ``skip_reason``.
    """
    manifest = store.read_result(prepared_uri)
    client = tracking.connect(settings)
    staging = tracking.staging_summary(client, settings.model_name, settings.quality_metric)
    reference_version = staging.get("data_version") if staging else None
    if not reference_version:
        result = _not_measured(manifest, "no Staging model to compare with")
    elif reference_version == manifest["data_version"]:
        result = _not_measured(manifest, "the Staging model was trained on this same data version")
    else:
        try:
            with fetched_version(settings, store, reference_version) as path:
                reference = tables.load_table(path, reference_version, settings.csv_delimiter)
        except NotFoundError:
            result = _not_measured(manifest, f"the Staging model's data version {reference_version} "
                                             "is not on the DVC remote")
        else:
            result = _measure(store, manifest, reference, output_uri)
            result["reference_version"] = reference_version
    store.write_result(output_uri, result)
    summary, max_share = result.get("drift"), settings.max_drift_share
    if max_share is not None and summary and summary["share"] > max_share:
        result["skip_reason"] = (f"{result['drift_line']}, more than max_drift_share {max_share:.0%}: "
                                 "nothing trained or registered")
    return result


def _measure(store: Storage, manifest: dict[str, Any], reference: pd.DataFrame,
             output_uri: str) -> dict[str, Any]:
    current = pd.concat([tables.read_frame(store, manifest[key])
                         for key in ("train_uri", "test_uri")], ignore_index=True)
    summary, html = drift.measure(reference, current, TableSchema.from_dict(manifest["schema"]))
    report_uri = storage.join(output_uri, REPORT_FILE)
    store.write_bytes(report_uri, html)
    store.write_json(storage.join(output_uri, SUMMARY_FILE), summary.to_dict())
    line = f"data drift since the Staging model's data: {summary.line()}"
    log.info("%s", line)
    return {"step": "check_drift", "data_version": manifest["data_version"], "drift": summary.to_dict(),
            "drift_line": line, "report_uri": report_uri}


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return check_drift(settings, Storage(settings.s3), args.prepared, args.output)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--prepared", required=True, help="output location of the prepare step")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)
