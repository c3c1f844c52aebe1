"""The Staging model as the champion: loaded from the registry by its alias, scored on the new split.

A gate that compares the new model's metric on the new test split with the
Staging model's metric on *its own* older split can be passed by easier rows.
So evaluate loads ``models:/<name>@staging`` itself and scores it on the very
rows the challenger was scored on. When the champion cannot score them (its
columns are gone, its classes differ, its pickle no longer loads), that is said
in one line and the gate decides on the threshold alone.

Those rows must also be new to the champion: a row it was trained on flatters
it. The split keeps a row on the same side in every data version, so none should
be; :func:`seen_rows` checks, with the hashes of the rows the champion learnt
(logged with it by train), and the comparison leaves out any it finds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline_steps.modelling import registry
from pipeline_steps.data import split
from pipeline_steps.services import tracking
from pipeline_steps.errors import PipelineError
from pipeline_steps.modelling.model import LabelledModel
from pipeline_steps.text import some

log = logging.getLogger(__name__)


@dataclass
class Champion:
    """The Staging model version, and its model when it could be loaded."""

    version: str
    run_id: str | None
    model: LabelledModel | None
    problem: str | None = None


def load(client: Any, model_name: str) -> Champion | None:
    """The model holding the ``staging`` alias, from the registry; None when there is none yet."""
    version = tracking.staging_version(client, model_name)
    if version is None:
        return None
    try:
        model = registry.load_labelled_model(model_name, tracking.STAGING_ALIAS)
    except PipelineError as exc:
        if exc.retryable:
            raise
        return Champion(str(version.version), version.run_id, None, f"cannot be loaded ({exc})")
    return Champion(str(version.version), version.run_id, model)


def cannot_score(champion: LabelledModel, challenger: LabelledModel, test: pd.DataFrame) -> str | None:
    """Why the champion's numbers on this split would not be comparable, or None when they are."""
    if list(champion.schema.classes) != list(challenger.schema.classes):
        return (f"its classes {list(champion.schema.classes)} differ from this split's "
                f"{list(challenger.schema.classes)}")
    if champion.schema.positive_class != challenger.schema.positive_class:
        return (f"its positive class {champion.schema.positive_class!r} differs from "
                f"{challenger.schema.positive_class!r}")
    missing = [name for name in champion.schema.feature_names if name not in test.columns]
    if missing:
        return f"its feature(s) {some(missing)} are not in this split"
    return None


def predict_proba(champion: LabelledModel, test: pd.DataFrame) -> tuple[Any | None, str | None]:
    """The champion's class probabilities on the split, or why it could not produce them."""
    try:
        return champion.predict_proba(test), None
    except (PipelineError, KeyError, ValueError, TypeError) as exc:
        log.warning("the Staging model cannot score this split: %s", exc)
        return None, f"it fails on this split ({str(exc).splitlines()[0][:300]})"


def seen_rows(client: Any, champion: Champion,
              test_ids: Callable[[int, list[str]], np.ndarray]) -> np.ndarray | None:
    """For each test row, whether the champion was trained on it; None when it cannot be told.

    ``test_ids(seed, columns)``: the test rows' ids as a split with that seed over those
    columns gives them; the champion's training rows were identified with its own.
    """
    if champion.model is None or not champion.run_id:
        return None
    trained_on = tracking.load_run_bytes(client, champion.run_id, split.TRAIN_ROWS_FILE)
    if trained_on is None:
        return None  # registered before training rows were recorded
    tags = tracking.get_run(client, champion.run_id).data.tags
    if tags.get(split.SCHEME_TAG) != split.SCHEME or tracking.TAG_SEED not in tags:
        return None
    schema = champion.model.schema
    ids = test_ids(int(tags[tracking.TAG_SEED]), [*schema.feature_names, schema.target])
    return np.isin(ids, split.ids_from_bytes(trained_on))
