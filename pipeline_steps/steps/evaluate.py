"""Step 3: score the new model and the Staging model on the same held-out split; record both.

Writes ``metrics.json`` (accuracy, balanced accuracy, precision, recall, F1, macro
F1, ROC AUC), ``classification_report.json`` (precision, recall, F1 and support
per class, under the user's labels) and ``confusion_matrix.png`` (axes in the
user's labels) to ``--output``, with the same plots as data for ``dvc plots``
(pipeline_steps/plots.py), and logs the same values and files to the train
step's MLflow run, so the file and the run can never disagree. The current
Staging model (the champion, loaded from the registry by its alias) is scored on
the very same rows: both sets of numbers go to the run (``challenger.<metric>``,
``champion.<metric>``) with ``champion_vs_challenger.png``, and to the result
the quality gate reads, with what changed in the schema since it was trained.
The gate itself (pipeline_steps/gate.py) decides here too, so the DAG and the
local pipeline read one decision: ``gate`` in the result, ``gate.decision`` and
``gate.reason`` tags on the run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import pickle
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipeline_steps.modelling import champion as champions
from pipeline_steps.modelling import gate
from pipeline_steps.data import tables
from pipeline_steps.modelling import plots
from pipeline_steps.services import provenance
from pipeline_steps.data import split
from pipeline_steps.services import storage
from pipeline_steps.services import tracking
from pipeline_steps.modelling.metrics import compute_metrics
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import EvaluateResult
from pipeline_steps.pipeline import CLASS_REPORT_FILE, CONFUSION_MATRIX_FILE, METRICS_FILE
from pipeline_steps.errors import data_problem
from pipeline_steps.modelling.model import LabelledModel
from pipeline_steps.data.schema import TableSchema, differences
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage

COMPARISON_FILE = "champion_vs_challenger.png"
TAG_DRIFT_SUMMARY = "drift.summary"
TAG_DRIFT_COLUMNS = "drift.columns"
METRIC_DRIFT_SHARE = "drift.share"
# How many of this run's test rows the Staging model was trained on (0, or "unknown" for a model
# registered before training rows were recorded).
TAG_CHAMPION_SEEN = "champion.seen_test_rows"
CHALLENGER_PREFIX = "challenger."
CHAMPION_PREFIX = "champion."
log = logging.getLogger(__name__)


def class_report(codes: Any, predicted: Any, class_names: list[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support of each class, keyed by the user's label."""
    from sklearn.metrics import classification_report  # pylint: disable=import-outside-toplevel

    return classification_report(
        codes, predicted, labels=list(range(len(class_names))), target_names=class_names,
        output_dict=True, zero_division=0,
    )


def confusion_matrix_figure(codes: Any, predicted: Any, class_names: list[str], title: str) -> Any:
    """The confusion matrix as a matplotlib figure: counts in each cell, the user's labels on the axes."""
    return _matrices_figure(codes, [(predicted, title)], class_names)


def comparison_figure(codes: Any, panels: list[tuple[Any, str]], class_names: list[str]) -> Any:
    """Confusion matrices side by side, one per (predicted codes, title): the same rows, two models."""
    return _matrices_figure(codes, panels, class_names)


def _matrices_figure(codes: Any, panels: list[tuple[Any, str]], class_names: list[str]) -> Any:
    # pylint: disable=import-outside-toplevel
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 4.5 + 0.4 * max(0, len(class_names) - 3)
    figure, axes = plt.subplots(1, len(panels), figsize=((size + 0.5) * len(panels), size), dpi=100,
                                squeeze=False)
    for ax, (predicted, title) in zip(axes[0], panels):
        ConfusionMatrixDisplay.from_predictions(
            codes, predicted, labels=list(range(len(class_names))),
            display_labels=class_names, ax=ax, colorbar=False, cmap="Blues",
            xticks_rotation=45 if max(map(len, class_names)) > 6 else "horizontal",
        )
        ax.set_title(title)
    figure.tight_layout()
    return figure


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open one alive)."""
    from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _record(store: Storage, output_uri: str, run: tuple[Any, str], metrics: dict[str, float],
            files: dict[str, bytes]) -> None:
    """Write the files to the step's output and log the very same bytes and values to the run."""
    client, run_id = run
    for name, payload in files.items():
        store.write_bytes(storage.join(output_uri, name), payload)
    tracking.log_files(client, run_id, files)
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)


class Measured(NamedTuple):
    """A model on a test split: the true codes, the predicted codes and every metric."""

    codes: Any
    predicted: Any
    metrics: dict[str, float]


def measure(model: LabelledModel, test: Any, probabilities: Any = None) -> Measured:
    """True codes, predicted codes and every metric of a model on the test split."""
    codes = model.schema.encode_labels(test[model.schema.target]).to_numpy()
    if probabilities is None:
        probabilities = model.predict_proba(test)
    predicted = probabilities.argmax(axis=1)
    with data_problem(f"the metrics cannot be computed on these {len(codes)} test rows"):
        metrics = compute_metrics(codes, predicted, probabilities, model.schema.positive_code)
    return Measured(codes, predicted, metrics)


def score(model: LabelledModel, test: Any, title: str) -> tuple[Measured, dict[str, bytes]]:
    """The model measured on the test split, and the files a person (or `dvc plots`) reads about it."""
    probabilities = model.predict_proba(test)
    codes, predicted, metrics = measured = measure(model, test, probabilities)
    names = [str(c) for c in model.schema.classes]
    files = {
        METRICS_FILE: json.dumps(metrics, indent=2, sort_keys=True).encode(),
        CLASS_REPORT_FILE: json.dumps(class_report(codes, predicted, names), indent=2).encode(),
        CONFUSION_MATRIX_FILE: png_bytes(confusion_matrix_figure(codes, predicted, names, title)),
        **plots.files(codes, predicted, probabilities, names, model.schema.positive_code),
    }
    return measured, files


def test_row_ids(store: Storage, manifest: dict[str, Any],
                 test: Any) -> Callable[[int, list[str]], np.ndarray]:
    """The ids of the test rows under a seed and columns: as prepare wrote them when both are this
    split's, else worked out again over the whole data version (train and test rows)."""
    def ids(seed: int, columns: list[str]) -> np.ndarray:
        own = sorted([*manifest["features"], manifest["target"]])
        if seed == manifest["seed"] and sorted(columns) == own:
            return split.ids_from_bytes(store.read_bytes(manifest["test_rows_uri"]))
        whole = pd.concat([tables.read_frame(store, manifest["train_uri"]), test], ignore_index=True)
        return split.row_ids(whole, columns, seed)[-len(test):]
    return ids


def face_off(client: Any, model_name: str, challenger: LabelledModel, measured: Measured, test: Any,
             metric: str, test_ids: Callable[[int, list[str]], np.ndarray]
             ) -> tuple[dict[str, Any] | None, dict[str, float], dict[str, bytes]]:
    """Score the Staging model on the challenger's own test rows, those it was not trained on.

    ``measured`` is what :func:`score` measured of the challenger on ``test``, so it
    is not scored twice. Returns the champion's summary for the gate (None without a
    Staging model), the metrics to log (``challenger.*`` always, ``champion.*`` when
    it scored) and the side-by-side plot. Should the champion have learnt some of
    these rows (a data version split with another seed, or before splits were by row),
    both models are compared on the rest, and the summary says how many it had seen.
    """
    codes, predicted, metrics = measured
    logged = {f"{CHALLENGER_PREFIX}{name}": value for name, value in metrics.items()}
    found = champions.load(client, model_name)
    if found is None:
        return None, logged, {}
    summary: dict[str, Any] = {"version": found.version, "run_id": found.run_id, "metric": metric,
                               "scored": False, "metrics": {}, "problem": found.problem,
                               "test_rows": len(test), "seen_rows": None}
    problem = found.problem or champions.cannot_score(found.model, challenger, test)
    if problem is None:
        seen = champions.seen_rows(client, found, test_ids)
        if seen is not None:
            summary["seen_rows"] = int(seen.sum())
            if seen.all():
                problem = f"it was trained on all {len(test)} of these test rows, so no comparison is fair"
            elif seen.any():
                test = test[~seen].reset_index(drop=True)
                codes, predicted, metrics = measured = measure(challenger, test)
    probabilities = None
    if problem is None:
        probabilities, problem = champions.predict_proba(found.model, test)
    if problem is not None:
        summary["problem"] = problem
        log.warning("the Staging model (version %s) cannot score this split: %s", found.version, problem)
        return summary, logged, {}
    _, champion_predicted, champion_metrics = measure(found.model, test, probabilities)
    summary.update(scored=True, metrics=champion_metrics, value=champion_metrics[metric],
                   compared_rows=len(test), challenger_value=metrics[metric])
    logged.update({f"{CHAMPION_PREFIX}{name}": value for name, value in champion_metrics.items()})
    names = [str(c) for c in challenger.schema.classes]
    figure = comparison_figure(codes, [
        (predicted, f"challenger (this run): {metric}={metrics[metric]:.4f}"),
        (champion_predicted, f"champion (Staging v{found.version}): {metric}={champion_metrics[metric]:.4f}"),
    ], names)
    log.info("on the same %d test rows: challenger %s=%.4f, Staging model version %s %s=%.4f "
             "(it was trained on %s of the split's %d test rows)", len(test), metric, metrics[metric],
             found.version, metric, champion_metrics[metric],
             "an unknown number" if summary["seen_rows"] is None else summary["seen_rows"],
             summary["test_rows"])
    return summary, logged, {COMPARISON_FILE: png_bytes(figure)}


def champion_tags(champion: dict[str, Any] | None) -> dict[str, str]:
    """How many of the test rows the Staging model was trained on, as the run's tag (when there is one)."""
    if not champion:
        return {}
    seen = champion.get("seen_rows")
    return {TAG_CHAMPION_SEEN: "unknown" if seen is None else str(seen)}


def schema_changes(client: Any, champion: dict[str, Any] | None, schema: TableSchema) -> list[str]:
    """What changed in the schema since the Staging model was trained; nothing without one."""
    if not champion or not champion.get("run_id"):
        return []
    staging_schema = tracking.load_run_json(client, champion["run_id"], tracking.SCHEMA_FILE)
    if staging_schema is None:
        return ["the Staging model has no recorded schema to compare with"]
    return differences(TableSchema.from_dict(staging_schema), schema)


def drift_record(store: Storage, drift_uri: str | None) -> dict[str, Any]:
    """What the drift check found, for the run: its line, the drift.share metric, tags and the report."""
    record: dict[str, Any] = {"line": None, "metrics": {}, "tags": {}, "files": {}}
    if not drift_uri:
        return record
    found = store.read_result(drift_uri)
    line = found.get("drift_line")
    record["line"] = line
    if line:
        record["tags"][TAG_DRIFT_SUMMARY] = str(line)[:5000]
    summary = found.get("drift")
    if summary:
        record["tags"][TAG_DRIFT_COLUMNS] = ", ".join(summary["drifted_columns"])[:5000]
        record["metrics"][METRIC_DRIFT_SHARE] = float(summary["share"])
        if found.get("report_uri"):
            record["files"][found["report_uri"].rsplit("/", 1)[-1]] = store.read_bytes(found["report_uri"])
    return record


def _tag_run(settings: Settings, run: tuple[Any, str], changes: list[str],
             found: dict[str, str]) -> None:
    """The evaluate image, the drift summary, the gate's decision and the schema changes since Staging."""
    client, run_id = run
    tags = {**provenance.image_tag(settings, "evaluate"), **found}
    if changes:
        tags[tracking.TAG_SCHEMA_CHANGES] = "; ".join(changes)[:5000]
        log.warning("schema changed since the Staging model: %s", "; ".join(changes))
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def evaluate(settings: Settings, store: Storage, trained_uri: str, output_uri: str,
             drift_uri: str | None = None) -> EvaluateResult:
    """Score the model of a train step; write and log the metrics, the report and the plot.

    With ``drift_uri`` (the drift check's output), its summary and report join the run too.
    """
    trained = store.read_result(trained_uri)
    manifest = store.read_result(trained["prepared_uri"])
    client = tracking.connect(settings)
    run_id = trained["run_id"]
    tracking.get_run(client, run_id)  # fail before the work if the run is not there

    model: LabelledModel = pickle.loads(store.read_bytes(trained["model_uri"]))
    test = tables.read_frame(store, manifest["test_uri"])
    measured, files = score(model, test, f"{manifest['dataset']} {manifest['data_version'][:8]}")
    metric = settings.quality_metric
    champion, compared, comparison = face_off(client, settings.model_name, model, measured, test, metric,
                                              test_row_ids(store, manifest, test))
    files.update(comparison)
    drift = drift_record(store, drift_uri)
    _record(store, output_uri, (client, run_id), {**measured.metrics, **compared, **drift["metrics"]},
            {**files, **drift["files"]})
    changes = schema_changes(client, champion, model.schema)

    result = {
        "step": "evaluate",
        "run_id": run_id,
        "data_version": manifest["data_version"],
        "metrics": measured.metrics,
        "metric": metric,
        "value": measured.metrics[metric],
        "positive_class": model.schema.positive_class,
        "champion": champion,
        "rows": manifest.get("rows"),
        "schema_changes": changes,
        "drift_line": drift["line"],
        "metrics_uri": storage.join(output_uri, METRICS_FILE),
        "report_uri": storage.join(output_uri, CLASS_REPORT_FILE),
        "plot_uri": storage.join(output_uri, CONFUSION_MATRIX_FILE),
        "comparison_uri": storage.join(output_uri, COMPARISON_FILE) if COMPARISON_FILE in files else None,
        "evaluated_uri": output_uri,
    }
    result["gate"] = gate.judge(settings, result)
    _tag_run(settings, (client, run_id), changes, {
        **drift["tags"],
        **champion_tags(champion),
        gate.TAG_DECISION: result["gate"]["decision"],
        gate.TAG_REASON: result["gate"]["reason"][:5000],
    })
    store.write_result(output_uri, result)
    log.info("run %s: %s=%.4f; quality gate %s: %s", run_id, metric, measured.metrics[metric],
             result["gate"]["decision"], result["gate"]["reason"])
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return evaluate(settings, Storage(settings.s3), args.trained, args.output, args.drift)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--trained", required=True, help="output location of the train step")
    parser.add_argument("--drift", help="output location of the drift check (optional)")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)
