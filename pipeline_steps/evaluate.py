"""Step 3: score the trained model on the held-out split and record it with the training run.

Writes ``metrics.json`` (accuracy, balanced accuracy, precision, recall, F1, macro
F1, ROC AUC), ``classification_report.json`` (precision, recall, F1 and support
per class, under the user's labels) and ``confusion_matrix.png`` (axes in the
user's labels) to ``--output`` and logs the same values and files to the train
step's MLflow run, so the file and the run can never disagree. The result also
carries the current Staging model's value of the gate metric and what changed in
the schema since it was trained, which is what the quality gate reports.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import pickle
from typing import Any

from pipeline_steps import data, provenance, storage, tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.model import LabelledModel
from pipeline_steps.schema import TableSchema, differences
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage

METRICS_FILE = "metrics.json"
REPORT_FILE = "classification_report.json"
PLOT_FILE = "confusion_matrix.png"
log = logging.getLogger(__name__)


def compute_metrics(
    codes: Any, predicted: Any, probabilities: Any, positive_code: int | None
) -> dict[str, float]:
    """Every metric in settings.METRICS.

    Two classes: precision, recall and f1 on the positive class. More: their macro
    averages, so f1 and f1_macro agree there.
    """
    # pylint: disable=import-outside-toplevel
    from sklearn import metrics as sk

    binary = probabilities.shape[1] == 2
    average = {"average": "binary", "pos_label": positive_code} if binary else {"average": "macro"}
    auc = (
        sk.roc_auc_score(codes == positive_code, probabilities[:, positive_code])
        if binary
        else sk.roc_auc_score(codes, probabilities, multi_class="ovr", average="macro",
                              labels=list(range(probabilities.shape[1])))
    )
    return {
        "accuracy": float(sk.accuracy_score(codes, predicted)),
        "balanced_accuracy": float(sk.balanced_accuracy_score(codes, predicted)),
        "precision": float(sk.precision_score(codes, predicted, zero_division=0, **average)),
        "recall": float(sk.recall_score(codes, predicted, zero_division=0, **average)),
        "f1": float(sk.f1_score(codes, predicted, zero_division=0, **average)),
        "f1_macro": float(sk.f1_score(codes, predicted, average="macro", zero_division=0)),
        "roc_auc": float(auc),
    }


def class_report(codes: Any, predicted: Any, class_names: list[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support of each class, keyed by the user's label."""
    from sklearn.metrics import classification_report  # pylint: disable=import-outside-toplevel

    return classification_report(
        codes, predicted, labels=list(range(len(class_names))), target_names=class_names,
        output_dict=True, zero_division=0,
    )


def confusion_matrix_figure(codes: Any, predicted: Any, class_names: list[str], title: str) -> Any:
    """The confusion matrix as a matplotlib figure: counts in each cell, the user's labels on the axes."""
    # pylint: disable=import-outside-toplevel
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 4.5 + 0.4 * max(0, len(class_names) - 3)
    figure, axes = plt.subplots(figsize=(size + 0.5, size), dpi=100)
    ConfusionMatrixDisplay.from_predictions(
        codes, predicted, labels=list(range(len(class_names))),
        display_labels=class_names, ax=axes, colorbar=False, cmap="Blues",
        xticks_rotation=45 if max(map(len, class_names)) > 6 else "horizontal",
    )
    axes.set_title(title)
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


def score(model: LabelledModel, test: Any, title: str) -> tuple[dict[str, float], dict[str, bytes]]:
    """The metrics of the model on the test split, and the files a person reads about them."""
    codes = model.schema.encode_labels(test[model.schema.target]).to_numpy()
    probabilities = model.predict_proba(test)
    predicted = probabilities.argmax(axis=1)
    names = [str(c) for c in model.schema.classes]
    metrics = compute_metrics(codes, predicted, probabilities, model.schema.positive_code)
    files = {
        METRICS_FILE: json.dumps(metrics, indent=2, sort_keys=True).encode(),
        REPORT_FILE: json.dumps(class_report(codes, predicted, names), indent=2).encode(),
        PLOT_FILE: png_bytes(confusion_matrix_figure(codes, predicted, names, title)),
    }
    return metrics, files


def schema_changes(client: Any, staging: dict[str, Any] | None, schema: TableSchema) -> list[str]:
    """What changed in the schema since the Staging model was trained; nothing without one."""
    if not staging or not staging.get("run_id"):
        return []
    staging_schema = tracking.load_run_json(client, staging["run_id"], tracking.SCHEMA_FILE)
    if staging_schema is None:
        return ["the Staging model has no recorded schema to compare with"]
    return differences(TableSchema.from_dict(staging_schema), schema)


def evaluate(settings: Settings, store: Storage, trained_uri: str, output_uri: str) -> dict[str, Any]:
    """Score the model of a train step; write and log the metrics, the report and the plot."""
    trained = store.read_manifest(trained_uri, "train")
    manifest = store.read_manifest(trained["prepared_uri"], "prepare")
    client = tracking.connect(settings)
    run_id = trained["run_id"]
    tracking.get_run(client, run_id)  # fail before the work if the run is not there

    model: LabelledModel = pickle.loads(store.read_bytes(trained["model_uri"]))
    test = data.from_parquet(store.read_bytes(manifest["test_uri"]))
    metrics, files = score(model, test, f"{manifest['dataset']} {manifest['data_version'][:8]}")
    _record(store, output_uri, (client, run_id), metrics, files)
    metric = settings.quality_metric
    staging = tracking.staging_summary(client, settings.model_name, metric)
    changes = schema_changes(client, staging, model.schema)
    tags = provenance.image_tag(settings, "evaluate")
    if changes:
        tags[tracking.TAG_SCHEMA_CHANGES] = "; ".join(changes)[:5000]
        log.warning("schema changed since the Staging model: %s", "; ".join(changes))
    for key, value in tags.items():
        client.set_tag(run_id, key, value)

    result = {
        "step": "evaluate",
        "run_id": run_id,
        "data_version": manifest["data_version"],
        "metrics": metrics,
        "metric": metric,
        "value": metrics[metric],
        "positive_class": model.schema.positive_class,
        "staging": staging,
        "schema_changes": changes,
        "metrics_uri": storage.join(output_uri, METRICS_FILE),
        "report_uri": storage.join(output_uri, REPORT_FILE),
        "plot_uri": storage.join(output_uri, PLOT_FILE),
        "evaluated_uri": output_uri,
    }
    store.write_manifest(output_uri, "evaluate", result)
    log.info("run %s: %s=%.4f", run_id, metric, metrics[metric])
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return evaluate(settings, Storage(settings.s3), args.trained, args.output)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser("evaluate", __doc__.splitlines()[0])
    parser.add_argument("--trained", required=True, help="output location of the train step")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    return run_cli(parser, _handle, argv)


if __name__ == "__main__":
    raise SystemExit(main())
