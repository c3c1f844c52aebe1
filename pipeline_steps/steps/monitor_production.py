"""Monitor the Production model on what it sees: drift of its inputs, its classes, its live metric.

Reads the prediction log (the model server's answers and batch scoring's rows) and
the labels sent back (``make feedback``) written since the last monitor run, from
the watermark on S3 (pipeline_steps/monitoring/window.py). Compares the window's
inputs with the data version the Production model was trained on (Evidently, as
check_drift compares two data versions), counts each predicted class, and computes
the gate's metric on the rows whose true label came back. Everything goes to an
MLflow run in the experiment ``<MODEL_NAME>-monitoring``: rows, drift share and
drifted columns, class shares, live metrics, and the report as an artifact. Its
triggers, each with a one-line reason: more than MONITOR_MAX_DRIFT_SHARE of the
columns drifted; the live metric below MONITOR_MIN_LIVE_METRIC (default:
QUALITY_THRESHOLD) on at least MONITOR_MIN_LABELLED_ROWS labelled rows, in which
case ``labelled_rows.parquet`` under ``--output`` holds those rows as training rows
(the inputs and the true label) for a new data version.

A window with no new file, or too few rows, measures nothing and says so; the
watermark stays where it was, so its rows count in the next window. The watermark
moves only once the run is recorded.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import pandas as pd

from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.data import appended, drift, tables
from pipeline_steps.data.schema import TableSchema
from pipeline_steps.data.versions import fetched_version
from pipeline_steps.errors import NotFoundError
from pipeline_steps.monitoring import figures, window
from pipeline_steps.results import MonitorResult
from pipeline_steps.services import storage, tracking
from pipeline_steps.services.storage import Storage
from pipeline_steps.settings import Settings

EXPERIMENT = "{model}-monitoring"
TIMELINE_TAG = "ct.monitor.timeline"  # the experiment's one run that holds every window's figures
REPORT_FILE = "drift_report.html"
LABELLED_FILE = "labelled_rows.parquet"
log = logging.getLogger(__name__)


def production_schema(name: str, version: str) -> TableSchema:
    """The schema the version was trained with, from its MLmodel file (the model itself is not loaded)."""
    import mlflow  # pylint: disable=import-outside-toplevel

    metadata = mlflow.models.get_model_info(f"models:/{name}/{version}").metadata or {}
    if "schema" not in metadata:
        raise NotFoundError(f"{name} version {version} carries no schema in its metadata: it was not "
                            "registered by this pipeline")
    return TableSchema.from_dict(metadata["schema"])


def inputs_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """The records the window's predictions were asked about, one row each, as they were sent."""
    return pd.DataFrame.from_records([json.loads(text) for text in predictions["inputs"]])


def labelled_training_rows(labelled: pd.DataFrame, target: str) -> pd.DataFrame:
    """The labelled rows as training rows: the record that was asked, and its true label; and their
    keys (pipeline_steps/data/appended.py: no row is appended to the training data twice)."""
    rows = inputs_frame(labelled)
    rows[target] = [json.loads(label) for label in labelled["label"]]
    request_key, row_key = appended.KEYS
    rows[request_key] = labelled["request_id"].to_numpy()
    rows[row_key] = labelled["row"].to_numpy()
    return rows


def monitor_production(settings: Settings, store: Storage, output_uri: str) -> MonitorResult:
    """Measure the window since the last run, record it in MLflow, move the watermark; the outcome."""
    client = tracking.connect(settings)
    name, bucket = settings.model_name, settings.s3_prediction_log_bucket
    production = tracking.version_by_alias(client, name, tracking.PRODUCTION_ALIAS)
    if production is None:
        return {"step": "monitor_production",
                "skip_reason": f"no Production model of {name} yet: nothing is served to monitor"}
    start = window.watermark(store, bucket, name)
    found = window.read_window(store, bucket, name, start, window.window_end())
    too_few = _too_few(settings, found)
    if too_few:
        log.info("%s", too_few)
        return {"step": "monitor_production", "skip_reason": too_few}
    version = str(production.version)
    schema = production_schema(name, version)
    data_version = tracking.get_run(client, production.run_id).data.tags.get(tracking.TAG_DATA_VERSION)
    summary, report = _drift(settings, store, schema, data_version, found)
    quality = figures.live_quality(found.labelled, schema.classes, schema.positive_code)
    triggers = _triggers(settings, summary, quality)
    result: MonitorResult = {
        "step": "monitor_production", "model_name": name, "model_version": version,
        "data_version": data_version, "window_start": start.isoformat() if start else None,
        "window_end": found.end.isoformat(), "rows": len(found.predictions),
        "labelled_rows": quality.labelled_rows, "unmatched_labels": found.unmatched_labels,
        "drift": summary.to_dict() if summary else None,
        "drift_line": summary.line() if summary else "drift not measured",
        "class_shares": figures.class_shares(found.predictions, schema.classes),
        "live_metrics": quality.metrics, "triggers": triggers,
    }
    if any(trigger["kind"] == "decay" for trigger in triggers):
        rows = labelled_training_rows(found.labelled, schema.target)
        result["labelled_uri"] = storage.join(output_uri, LABELLED_FILE)
        store.write_bytes(result["labelled_uri"], tables.to_parquet(rows))
    result["run_id"] = _record(client, settings, result, found, report)
    result["message"] = _outcome(settings, result, found)
    store.write_result(output_uri, dict(result))
    window.save_watermark(store, bucket, found, result["run_id"])
    log.info("%s", result["message"])
    return result


def _too_few(settings: Settings, found: window.Window) -> str | None:
    """Why the window measures nothing, or None when it has enough to say something."""
    if not found.files:
        since = f"since {found.start:%Y-%m-%d %H:%M:%S} UTC" if found.start else "yet"
        return f"nothing new in the prediction log of {found.model_name} {since}: measured nothing"
    if len(found.predictions) < settings.monitor_min_rows \
            and len(found.labelled) < settings.monitor_min_labelled_rows:
        return (f"{found.line()}: fewer than MONITOR_MIN_ROWS ({settings.monitor_min_rows}) predictions "
                "and MONITOR_MIN_LABELLED_ROWS labels; measured nothing, they count in the next window")
    return None


def _drift(settings: Settings, store: Storage, schema: TableSchema, data_version: str | None,
           found: window.Window) -> tuple[drift.DriftSummary | None, bytes | None]:
    """The window's inputs against the Production model's training data; (None, None) when there are
    too few predictions or the training data is not on the remote."""
    if len(found.predictions) < settings.monitor_min_rows or not data_version:
        return None, None
    try:
        with fetched_version(settings, store, data_version) as path:
            reference = tables.load_table(path, data_version, settings.csv_delimiter)
    except NotFoundError as exc:
        log.warning("drift not measured: %s", exc)
        return None, None
    current = inputs_frame(found.predictions)
    return drift.measure(reference.drop(columns=[schema.target], errors="ignore"), current, schema)


def _triggers(settings: Settings, summary: drift.DriftSummary | None,
              quality: figures.LiveQuality) -> list[dict[str, str]]:
    """Each trigger the window sets off, with its one-line reason."""
    found = []
    if summary and summary.share > settings.monitor_max_drift_share:
        found.append({"kind": "drift", "reason": f"{summary.line()}: more than MONITOR_MAX_DRIFT_SHARE "
                                                 f"({settings.monitor_max_drift_share:.0%})"})
    metric = settings.quality_metric
    floor = settings.monitor_min_live_metric
    floor = settings.quality_threshold if floor is None else floor
    live = quality.metrics.get(metric)
    if live is not None and quality.labelled_rows >= settings.monitor_min_labelled_rows and live < floor:
        found.append({"kind": "decay", "reason": f"live {metric} {live:.4f} on {quality.labelled_rows} "
                                                 f"labelled rows is below {floor:.4f} "
                                                 "(MONITOR_MIN_LIVE_METRIC)"})
    return found


def _record(client: Any, settings: Settings, result: MonitorResult, found: window.Window,
            report: bytes | None) -> str:
    """The window as an MLflow run of the model's monitoring experiment; its id."""
    experiment = EXPERIMENT.format(model=settings.model_name)
    found_experiment = client.get_experiment_by_name(experiment)
    experiment_id = (found_experiment.experiment_id if found_experiment
                     else client.create_experiment(experiment))
    run = client.create_run(experiment_id, run_name=f"window to {found.end:%Y-%m-%d %H:%M:%S}", tags={
        "model_version": result["model_version"], tracking.TAG_DATA_VERSION: result["data_version"] or "",
        "window_start": result["window_start"] or "", "window_end": result["window_end"],
        "drifted_columns": ", ".join(result["drift"]["drifted_columns"]) if result["drift"] else "",
        "triggers": "; ".join(trigger["reason"] for trigger in result["triggers"]),
    })
    metrics = {"rows": result["rows"], "labelled_rows": result["labelled_rows"],
               **{f"share.{label}": share for label, share in result["class_shares"].items()},
               **{f"live_{metric}": value for metric, value in result["live_metrics"].items()}}
    if result["drift"]:
        metrics["drift_share"] = result["drift"]["share"]
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, float(value))
    _add_to_timeline(client, experiment_id, metrics, found.end)
    files = {"window.json": json.dumps(result, indent=1, default=str).encode()}
    if report:
        files[REPORT_FILE] = report
    tracking.log_files(client, run.info.run_id, files)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _add_to_timeline(client: Any, experiment_id: str, metrics: dict[str, float], end: Any) -> None:
    """Add the window's figures to the timeline run, at the window's end: its page in MLflow charts
    drift share, live metrics, class shares and rows over the windows (step: the window's number)."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`{TIMELINE_TAG}` = 'true'",
                               max_results=1)
    if found:
        run_id = found[0].info.run_id
        step = int(found[0].data.metrics.get("windows", 0))
    else:
        run_id = client.create_run(experiment_id, run_name="timeline: every window",
                                   tags={TIMELINE_TAG: "true"}).info.run_id
        step = 0
    at = int(end.timestamp() * 1000)
    for key, value in {**metrics, "windows": step + 1}.items():
        client.log_metric(run_id, key, float(value), timestamp=at, step=step)
    client.set_terminated(run_id)


def _outcome(settings: Settings, result: MonitorResult, found: window.Window) -> str:
    """The run in one line: what it read, what it measured, what it set off (a trigger's reason in place
    of the figure it judged)."""
    reasons = {trigger["kind"]: trigger["reason"] for trigger in result["triggers"]}
    parts = [f"{found.line()} for {result['model_name']} version {result['model_version']}",
             reasons.get("drift", result["drift_line"])]
    metric = settings.quality_metric
    if "decay" in reasons:
        parts.append(reasons["decay"])
    elif metric in result["live_metrics"]:
        parts.append(f"live {metric} {result['live_metrics'][metric]:.4f} on {result['labelled_rows']} "
                     "labelled rows")
    if not reasons:
        parts.append("no trigger")
    return "; ".join(parts)


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return dict(monitor_production(settings, Storage(settings.s3), args.output))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)
