"""Data drift between two tables, measured with Evidently's DataDriftPreset and summed up in one line.

Evidently runs a statistical test per column (Kolmogorov-Smirnov, chi-squared,
Wasserstein... chosen by column type and size) and counts the drifted columns.
This module runs that report and reads it into what the pipeline keeps: the share
and count of drifted columns and their names, plus the HTML report a person reads.
Evidently is imported only in :func:`measure`: it is the heaviest import of any
step, and only the check-drift image carries it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_steps.text import some

# How Evidently names a per-column test: ValueDrift(column=<name>,method=<test>,threshold=<t>).
_VALUE_DRIFT = re.compile(
    r"^ValueDrift\(column=(?P<column>.*),method=(?P<method>.*),threshold=(?P<threshold>[^,]*)\)$"
)


@dataclass(frozen=True)
class DriftSummary:
    """How many of the compared columns drifted, and which."""

    columns: int
    drifted: int
    share: float
    drifted_columns: tuple[str, ...]

    def line(self) -> str:
        """One line for the gate's reason and the run's tag."""
        if not self.drifted:
            return f"no column drifted (0 of {self.columns})"
        names = some(self.drifted_columns)
        return f"{self.drifted} of {self.columns} columns drifted ({self.share:.0%}): {names}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "drifted_columns": list(self.drifted_columns)}


def column_drifted(method: str, value: float, threshold: float) -> bool:
    """Evidently's own rule: a p-value drifts below the threshold, a distance at or above it."""
    return value < threshold if "p_value" in method else value >= threshold


def summarise(report: dict[str, Any]) -> DriftSummary:
    """The summary of an Evidently snapshot's ``dict()``: per-column tests and the drifted count."""
    drifted, columns = [], 0
    share = None
    for metric in report["metrics"]:
        name = metric["metric_name"]
        if name.startswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
            continue
        match = _VALUE_DRIFT.match(name)
        if match:
            columns += 1
            if column_drifted(match["method"], float(metric["value"]), float(match["threshold"])):
                drifted.append(match["column"])
    if share is None:
        share = len(drifted) / columns if columns else 0.0
    return DriftSummary(columns, len(drifted), share, tuple(drifted))


def measure(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[DriftSummary, bytes]:
    """Run DataDriftPreset on the columns both tables have; the summary and the HTML report."""
    # Only the check-drift image has Evidently (pandas<3); the dev venv and lint do not.
    # pylint: disable=import-outside-toplevel,import-error
    from evidently import Report
    from evidently.presets import DataDriftPreset

    common = [name for name in current.columns if name in reference.columns]
    snapshot = Report([DataDriftPreset()]).run(current_data=current[common],
                                               reference_data=reference[common])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "drift_report.html")
        snapshot.save_html(str(path))
        html = path.read_bytes()
    return summarise(snapshot.dict()), html
