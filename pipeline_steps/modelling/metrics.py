"""The metrics a model is judged on, apart from evaluate so that tune can score folds the same way.

The quality gate compares one of them (settings.GATE_METRICS); tune optimises the
same one in cross-validation, so a tuned model is tuned for what the gate asks.
"""

from __future__ import annotations

from typing import Any


def compute_metrics(
    codes: Any, predicted: Any, probabilities: Any, positive_code: int | None
) -> dict[str, float]:
    """Every metric in settings.METRICS.

    Two classes: precision, recall and f1 on the positive class. More: their macro
    averages, so f1 and f1_macro agree there. ROC AUC is left out where the true labels
    are all one class (it is not defined there): a window of live labels can be.
    """
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from sklearn import metrics as sk

    binary = probabilities.shape[1] == 2
    average = {"average": "binary", "pos_label": positive_code} if binary else {"average": "macro"}
    found = {
        "accuracy": float(sk.accuracy_score(codes, predicted)),
        "balanced_accuracy": float(sk.balanced_accuracy_score(codes, predicted)),
        "precision": float(sk.precision_score(codes, predicted, zero_division=0, **average)),
        "recall": float(sk.recall_score(codes, predicted, zero_division=0, **average)),
        "f1": float(sk.f1_score(codes, predicted, zero_division=0, **average)),
        "f1_macro": float(sk.f1_score(codes, predicted, average="macro", zero_division=0)),
    }
    if len(np.unique(codes)) < 2:
        return found
    auc = (
        sk.roc_auc_score(codes == positive_code, probabilities[:, positive_code])
        if binary
        else sk.roc_auc_score(codes, probabilities, multi_class="ovr", average="macro",
                              labels=list(range(probabilities.shape[1])))
    )
    return {**found, "roc_auc": float(auc)}
