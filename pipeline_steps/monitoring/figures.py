"""What a window says about the model in production: what it predicts, and how right it is.

The live metrics are the gate's own (pipeline_steps/modelling/metrics.py), computed
on the labelled rows of the window from what the model answered then (the logged
label and probabilities), so a live f1 and the f1 that let the version through are
the same measure on different rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.modelling.metrics import compute_metrics


@dataclass(frozen=True)
class LiveQuality:
    """The gate's metrics on a window's labelled rows, and how many rows they are over."""

    labelled_rows: int
    metrics: dict[str, float]  # empty when no row is labelled
    classes_labelled: int  # classes among the true labels (ROC AUC needs two: left out with one)


def class_shares(predictions: pd.DataFrame, classes: Sequence[Any]) -> dict[str, float]:
    """The share of each class among the window's predictions (rows with none left out), every class
    named, 0 where none was predicted."""
    answered = predictions["prediction"].dropna()
    counts = answered.map(json.loads).map(str).value_counts()
    total = int(counts.sum())
    return {str(label): (float(counts.get(str(label), 0)) / total if total else 0.0) for label in classes}


def live_quality(labelled: pd.DataFrame, classes: Sequence[Any], positive_code: int | None) -> LiveQuality:
    """The gate's metrics on the labelled rows that had a prediction."""
    usable = labelled.dropna(subset=["prediction", "probabilities"])
    if usable.empty:
        return LiveQuality(0, {}, 0)
    position = {json.dumps(label): code for code, label in enumerate(classes)}
    codes = usable["label"].map(position).to_numpy(dtype=int)
    predicted = usable["prediction"].map(position).to_numpy(dtype=int)
    keys = [str(label) for label in classes]
    probabilities = np.array([[found[key] for key in keys]
                              for found in usable["probabilities"].map(json.loads)], dtype=float)
    return LiveQuality(len(usable), compute_metrics(codes, predicted, probabilities, positive_code),
                       len(set(codes.tolist())))
