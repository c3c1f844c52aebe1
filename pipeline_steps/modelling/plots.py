"""The evaluate step's plots as data that `dvc plots show` / `dvc plots diff` render.

The PNGs are for people reading an MLflow run; DVC cannot compare two images, but it
can draw (and overlay, across experiments) a confusion matrix from one row per test
row, and curves from lists of points. Files, under the evaluate step's output:

- ``predictions.csv``: ``actual,predicted`` per test row, in the user's labels;
- ``roc.json``: ``{"roc": [{"fpr": .., "tpr": ..}, ...]}``;
- ``precision_recall.json``: ``{"precision_recall": [{"recall": .., "precision": ..}, ...]}``.

With two classes the curves are the positive class's; with more, the micro-average
over one-vs-rest (every class's scores pooled), so every table gets the same files.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from pipeline_steps.pipeline import PRECISION_RECALL_FILE, PREDICTIONS_CSV, ROC_FILE

MAX_POINTS = 1000  # a curve of a million test rows stays a small file and a quick plot


def files(codes: Any, predicted: Any, probabilities: Any, class_names: list[str],
          positive_code: int | None) -> dict[str, bytes]:
    """The three files, by name."""
    return {
        PREDICTIONS_CSV: _predictions_csv(codes, predicted, class_names),
        **_curves(np.asarray(codes), np.asarray(probabilities), positive_code),
    }


def _predictions_csv(codes: Any, predicted: Any, class_names: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    writer.writerows((class_names[int(a)], class_names[int(p)]) for a, p in zip(codes, predicted))
    return buffer.getvalue().encode()


def _curves(codes: np.ndarray, probabilities: np.ndarray, positive_code: int | None) -> dict[str, bytes]:
    # pylint: disable=import-outside-toplevel
    from sklearn import metrics as sk
    from sklearn.preprocessing import label_binarize

    if probabilities.shape[1] == 2:
        truth, scores = codes == positive_code, probabilities[:, positive_code]
    else:
        classes = list(range(probabilities.shape[1]))
        truth, scores = label_binarize(codes, classes=classes).ravel(), probabilities.ravel()
    fpr, tpr, _ = sk.roc_curve(truth, scores)
    precision, recall, _ = sk.precision_recall_curve(truth, scores)
    return {
        ROC_FILE: _points("roc", {"fpr": fpr, "tpr": tpr}),
        PRECISION_RECALL_FILE: _points("precision_recall", {"recall": recall, "precision": precision}),
    }


def _points(name: str, columns: dict[str, np.ndarray]) -> bytes:
    """At most MAX_POINTS points, evenly spread, the first and the last always kept."""
    length = len(next(iter(columns.values())))
    keep = np.unique(np.linspace(0, length - 1, num=min(length, MAX_POINTS)).round().astype(int))
    rows = [{key: round(float(values[i]), 6) for key, values in columns.items()} for i in keep]
    return json.dumps({name: rows}).encode()
