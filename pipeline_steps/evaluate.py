"""Step 3: score the trained model on the held-out split and record it with the training run.

Writes ``metrics.json`` (accuracy, precision, recall, F1, ROC AUC) and
``confusion_matrix.png`` to ``--output`` and logs the same values and files to
the train step's MLflow run, so the file and the run can never disagree. The
result also carries the current Staging model's value of the gate metric, which
is all the quality gate needs to decide.
"""

from __future__ import annotations

import argparse
import io
import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any

from pipeline_steps import data, provenance, storage, tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage

METRICS_FILE = "metrics.json"
PLOT_FILE = "confusion_matrix.png"
log = logging.getLogger(__name__)


def compute_metrics(labels: Any, predicted: Any, probabilities: Any) -> dict[str, float]:
    """The five scores; binary ones for two classes, macro averages for more."""
    # pylint: disable=import-outside-toplevel
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    from sklearn.metrics import roc_auc_score

    binary = probabilities.shape[1] == 2
    average = "binary" if binary else "macro"
    auc = (
        roc_auc_score(labels, probabilities[:, 1])
        if binary
        else roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    )
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, average=average, zero_division=0)),
        "recall": float(recall_score(labels, predicted, average=average, zero_division=0)),
        "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
        "roc_auc": float(auc),
    }


def confusion_matrix_png(labels: Any, predicted: Any, class_names: list[str], title: str) -> bytes:
    """The confusion matrix drawn as a PNG, counts in each cell."""
    # pylint: disable=import-outside-toplevel
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axes = plt.subplots(figsize=(5, 4.5), dpi=100)
    ConfusionMatrixDisplay.from_predictions(
        labels, predicted, labels=list(range(len(class_names))),
        display_labels=class_names, ax=axes, colorbar=False, cmap="Blues",
    )
    axes.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _log_to_run(client: Any, run_id: str, metrics: dict[str, float], files: dict[str, bytes]) -> None:
    """Log the very bytes written to --output, so the run and the files cannot disagree."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, payload in files.items():
            Path(tmp, name).write_bytes(payload)
            client.log_artifact(run_id, str(Path(tmp, name)))
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)


def evaluate(settings: Settings, store: Storage, trained_uri: str, output_uri: str) -> dict[str, Any]:
    """Score the model of a train step; write and log metrics.json and the confusion matrix."""
    trained = store.read_manifest(trained_uri, "train")
    manifest = store.read_manifest(trained["prepared_uri"], "prepare")
    client = tracking.connect(settings)
    run_id = trained["run_id"]
    tracking.get_run(client, run_id)  # fail before the work if the run is not there

    model = pickle.loads(store.read_bytes(trained["model_uri"]))
    test = data.from_parquet(store.read_bytes(manifest["test_uri"]))
    labels = test.pop(manifest["target"])
    predicted = model.predict(test)
    metrics = compute_metrics(labels, predicted, model.predict_proba(test))
    plot = confusion_matrix_png(
        labels, predicted, [str(c) for c in manifest["classes"]],
        f"{manifest['dataset']} {manifest['data_version'][:8]}",
    )

    metrics_uri = storage.join(output_uri, METRICS_FILE)
    plot_uri = storage.join(output_uri, PLOT_FILE)
    store.write_json(metrics_uri, metrics)
    store.write_bytes(plot_uri, plot)
    _log_to_run(client, run_id, metrics, {METRICS_FILE: store.read_bytes(metrics_uri), PLOT_FILE: plot})
    for key, value in provenance.image_tag(settings, "evaluate").items():
        client.set_tag(run_id, key, value)

    metric = settings.quality_metric
    result = {
        "step": "evaluate",
        "run_id": run_id,
        "data_version": manifest["data_version"],
        "metrics": metrics,
        "metric": metric,
        "value": metrics[metric],
        "staging": tracking.staging_summary(client, settings.model_name, metric),
        "metrics_uri": metrics_uri,
        "plot_uri": plot_uri,
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
