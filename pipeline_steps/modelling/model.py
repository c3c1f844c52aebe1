"""The trained model as the steps and the registry keep it: an XGBoost classifier and its schema.

``model.pkl`` is a pickled :class:`LabelledModel`. It takes a raw frame of the
user's columns and answers in the user's labels, because the schema travels with
the classifier: evaluate, the registered MLflow model and any later scoring all
turn input into features the one way training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.errors import data_problem
from pipeline_steps.data.schema import TableSchema


class LabelledModel:
    """An XGBClassifier fitted on :meth:`TableSchema.model_input`, answering in the user's labels."""

    def __init__(self, schema: TableSchema, classifier: Any) -> None:
        self.schema = schema
        self.classifier = classifier

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        """Class probabilities, one column per class in the schema's (sorted) order."""
        return self.classifier.predict_proba(_for_xgboost(self.schema.model_input(frame)))

    def scored(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
        """Class probabilities of each row that can be scored (NaN in the rows that cannot), and
        for each row why it cannot be scored (None where it can)."""
        inputs, reasons = self.schema.scoring_input(frame)
        usable = reasons.isna().to_numpy()
        probabilities = np.full((len(frame), len(self.schema.classes)), np.nan)
        if usable.any():
            probabilities[usable] = self.classifier.predict_proba(_for_xgboost(inputs[usable]))
        return probabilities, reasons

    def predict_codes(self, frame: pd.DataFrame) -> Any:
        """The most probable class of each row, as a code 0..k-1."""
        return self.predict_proba(frame).argmax(axis=1)

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """The most probable class of each row, as the user's label."""
        labels = self.schema.decode(self.predict_codes(frame))
        labels.index = frame.index
        return labels.rename(self.schema.target)


def _for_xgboost(inputs: pd.DataFrame) -> Any:
    """The model's input as XGBoost reads it fastest: a float array when no column is a category.

    The same numbers in the same column order give the same predictions; XGBoost's own
    reading of a frame costs about 2 ms a call (30 columns), which is most of a one-row
    prediction, and a category column needs it.
    """
    if any(isinstance(dtype, pd.CategoricalDtype) for dtype in inputs.dtypes):
        return inputs
    return inputs.to_numpy(dtype="float64")


def fit(frame: pd.DataFrame, schema: TableSchema, params: dict[str, Any], seed: int) -> LabelledModel:
    """Fit on a prepared split (features and target); same data, params and seed give the same model."""
    from xgboost import XGBClassifier  # pylint: disable=import-outside-toplevel

    features, labels = schema.model_input(frame), schema.encode_labels(frame[schema.target])
    with data_problem("XGBoost cannot train on this split"):
        classifier = XGBClassifier(**{"enable_categorical": True, **params}, random_state=seed)
        classifier.fit(features, labels)
    return LabelledModel(schema, classifier)
