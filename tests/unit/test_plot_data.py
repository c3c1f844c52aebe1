"""The evaluate step's plot data: what `dvc plots` draws the confusion matrix and the curves from."""

from __future__ import annotations

import json

import numpy as np

from pipeline_steps.modelling import plots


def test_binary_predictions_are_in_the_users_labels_and_the_curves_are_the_positive_class() -> None:
    codes = np.array([0, 1, 1, 0])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    files = plots.files(codes, probabilities.argmax(axis=1), probabilities, ["stayed", "churned"], 1)
    assert files["predictions.csv"].decode().splitlines() == [
        "actual,predicted", "stayed,stayed", "churned,churned", "churned,stayed", "stayed,churned"]
    roc = json.loads(files["roc.json"])["roc"]
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    curve = json.loads(files["precision_recall.json"])["precision_recall"]
    assert {"recall", "precision"} == set(curve[0]) and curve[-1]["recall"] == 0.0


def test_more_classes_give_the_micro_average_curves() -> None:
    codes = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    files = plots.files(codes, probabilities.argmax(axis=1), probabilities, ["a", "b", "c"], None)
    roc = json.loads(files["roc.json"])["roc"]
    assert roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    assert len(files["predictions.csv"].decode().splitlines()) == 5


def test_a_curve_of_many_rows_keeps_at_most_a_thousand_points_ends_included() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, 50_000)
    positive = np.clip(codes * 0.3 + rng.random(50_000) * 0.7, 0, 1)
    probabilities = np.column_stack([1 - positive, positive])
    files = plots.files(codes, probabilities.argmax(axis=1), probabilities, ["no", "yes"], 1)
    curve = json.loads(files["precision_recall.json"])["precision_recall"]
    assert 900 <= len(curve) <= plots.MAX_POINTS
    assert curve[-1] == {"recall": 0.0, "precision": 1.0}
    assert len(files["roc.json"]) < 100_000
