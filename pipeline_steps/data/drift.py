"""Data drift between two tables, measured with Evidently's DataDriftPreset and summed up in one line.

Evidently runs a statistical test per column (Kolmogorov-Smirnov, chi-squared,
Wasserstein... chosen by column type and size) and counts the drifted columns.
This module runs that report and reads it into what the pipeline keeps: the share
and count of drifted feature columns and their names, whether the label's
distribution moved too (not counted among the features), plus the HTML report a
person reads. Evidently is told each column's kind by the training schema, so it
never guesses one from the values (it took a column of numbers with a typo for
free text, and failed inside its text drift). Evidently is imported only in
:func:`measure`: it is the heaviest import of any step, and only the drift check's
image carries it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_steps.errors import data_problem
from pipeline_steps.data.schema import CATEGORICAL, TableSchema
from pipeline_steps.text import some

# How Evidently names a per-column test: ValueDrift(column=<name>,method=<test>,threshold=<t>).
_VALUE_DRIFT = re.compile(
    r"^ValueDrift\(column=(?P<column>.*),method=(?P<method>.*),threshold=(?P<threshold>[^,]*)\)$"
)


@dataclass(frozen=True)
class DriftSummary:
    """How many of the compared feature columns drifted, and which; whether the label did."""

    columns: int
    drifted: int
    share: float
    drifted_columns: tuple[str, ...]
    label_drifted: bool = False

    def line(self) -> str:
        """One line for the gate's reason and the run's tag."""
        label = "; the label's distribution drifted too" if self.label_drifted else ""
        if not self.drifted:
            return f"no column drifted (0 of {self.columns}){label}"
        names = some(self.drifted_columns)
        return f"{self.drifted} of {self.columns} columns drifted ({self.share:.0%}): {names}{label}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "drifted_columns": list(self.drifted_columns)}


def column_drifted(method: str, value: float, threshold: float) -> bool:
    """Evidently's own rule: a p-value drifts below the threshold, a distance at or above it."""
    return value < threshold if "p_value" in method else value >= threshold


def summarise(report: dict[str, Any], target: str | None = None) -> DriftSummary:
    """The summary of an Evidently snapshot's ``dict()``: the per-column tests, the label's apart."""
    drifted, columns, label_drifted = [], 0, False
    for metric in report["metrics"]:
        match = _VALUE_DRIFT.match(metric["metric_name"])
        if not match:
            continue
        moved = column_drifted(match["method"], float(metric["value"]), float(match["threshold"]))
        if match["column"] == target:
            label_drifted = moved
            continue
        columns += 1
        if moved:
            drifted.append(match["column"])
    share = len(drifted) / columns if columns else 0.0
    return DriftSummary(columns, len(drifted), share, tuple(drifted), label_drifted)


def measure(reference: pd.DataFrame, current: pd.DataFrame,
            schema: TableSchema) -> tuple[DriftSummary, bytes]:
    """Run DataDriftPreset on the features both tables have, and the label; the summary and the report.

    Both tables go through the schema first, leniently (a value its column's kind cannot
    hold is missing): the reference is an older data version, which validation saw under
    its own schema. Evidently fails only on data (nothing else goes in), so a failure of
    it is a data problem, reported as one (no retry computes it differently).
    """
    # Only the drift check's image has Evidently (pandas<3); the dev venv and lint do not.
    # pylint: disable=import-outside-toplevel,import-error
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    common = replace(schema, features=tuple(f for f in schema.features if f.name in reference.columns))
    frames = [common.analysis_input(table) for table in (reference, current)]
    categorical = [f.name for f in common.features if f.kind == CATEGORICAL]
    numerical = [name for name in frames[0].columns if name not in categorical]
    if schema.target in reference.columns:
        for frame, table in zip(frames, (reference, current)):
            frame[schema.target] = table[schema.target].astype("string").astype(object).to_numpy()
        categorical.append(schema.target)
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    with data_problem("Evidently could not compare the two data versions"):
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(frames[1], data_definition=definition),
            reference_data=Dataset.from_pandas(frames[0], data_definition=definition))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "drift_report.html")
            snapshot.save_html(str(path))
            html = path.read_bytes()
        found = snapshot.dict()
    return summarise(found, schema.target), html
