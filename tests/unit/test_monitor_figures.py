"""A window's figures: the share of each predicted class, and the gate's metrics on the rows whose
true label came back, from what the model answered then."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline_steps.monitoring.figures import class_shares, live_quality


def labelled(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    """(true label, predicted label, probability of 1) per row, as the window joins them."""
    return pd.DataFrame({
        "label": [json.dumps(truth) for truth, _, _ in rows],
        "prediction": [json.dumps(said) for _, said, _ in rows],
        "probabilities": [json.dumps({"0": 1 - p, "1": p}) for _, _, p in rows],
    })


def test_each_class_gets_its_share_of_the_predictions_and_rows_without_one_are_left_out() -> None:
    predictions = pd.DataFrame({"prediction": ['"yes"', '"no"', '"yes"', None]})
    assert class_shares(predictions, ["yes", "no", "maybe"]) == pytest.approx(
        {"yes": 2 / 3, "no": 1 / 3, "maybe": 0.0})
    assert class_shares(predictions.iloc[3:], ["yes", "no"]) == {"yes": 0.0, "no": 0.0}


def test_the_live_metrics_are_the_gates_on_the_labelled_rows() -> None:
    quality = live_quality(labelled([(1, 1, 0.9), (1, 0, 0.4), (0, 0, 0.2), (0, 1, 0.6), (1, 1, 0.8)]),
                           classes=[0, 1], positive_code=1)
    assert quality.labelled_rows == 5 and quality.classes_labelled == 2
    # Of three true 1s two were found; of three predicted 1s two were right.
    assert quality.metrics["recall"] == pytest.approx(2 / 3)
    assert quality.metrics["precision"] == pytest.approx(2 / 3)
    assert quality.metrics["f1"] == pytest.approx(2 / 3)
    assert quality.metrics["accuracy"] == pytest.approx(3 / 5)
    assert quality.metrics["roc_auc"] == pytest.approx(5 / 6)


def test_labels_all_of_one_class_give_every_metric_but_roc_auc_and_none_give_nothing() -> None:
    quality = live_quality(labelled([(1, 1, 0.9), (1, 0, 0.3)]), classes=[0, 1], positive_code=1)
    assert quality.classes_labelled == 1 and "roc_auc" not in quality.metrics
    assert quality.metrics["recall"] == pytest.approx(0.5)
    empty = live_quality(labelled([]), classes=[0, 1], positive_code=1)
    assert (empty.labelled_rows, empty.metrics) == (0, {})
