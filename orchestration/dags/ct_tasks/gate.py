"""The quality gate: register a model only when it beats the threshold and is no worse than Staging.

A pure function (`decide`) with its reason, and the two callables the DAG runs
around it: the branch that picks the next task and the stop that reports why.
The reason travels on in XCom, to the notification and to `make run`'s last line,
and is a tag of the new model's MLflow run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ct_tasks import mlflow_api

log = logging.getLogger(__name__)
REGISTER_TASK = "register_model"
STOP_TASK = "stop_pipeline"


def decide(evaluation: dict[str, Any], threshold: float, metric: str,
           tolerance: float = 0.0) -> tuple[bool, str]:
    """Beat the threshold and be no worse than the Staging model on the same rows; say why either way.

    Both numbers come from evaluate, which scored the new model and the Staging
    model on the new run's test split. When the Staging model could not score it,
    the threshold alone decides and the reason says so. A schema change or data
    drift since the Staging model does not decide anything, but the reason says so.
    """
    passed, reason = _compare(evaluation, threshold, metric, tolerance)
    changes = evaluation.get("schema_changes") or []
    if changes:
        reason += f"; schema changed since the Staging model: {'; '.join(changes)}"
    if evaluation.get("drift_line"):
        reason += f"; {evaluation['drift_line']}"
    return passed, reason


def _compare(evaluation: dict[str, Any], threshold: float, metric: str,
             tolerance: float) -> tuple[bool, str]:
    value = float(evaluation["metrics"][metric])
    if not value > threshold:
        return False, f"{metric}={value:.4f} does not beat the threshold {threshold:.4f}"
    beats = f"{metric}={value:.4f} beats the threshold {threshold:.4f}"
    champion = evaluation.get("champion")
    if not champion:
        return True, f"{beats}; no Staging model yet"
    named = f"the Staging model (version {champion.get('version')}"
    champion_value = (champion.get("metrics") or {}).get(metric) if champion.get("scored") else None
    if champion_value is None:
        problem = champion.get("problem") or "it has no score on this split"
        return True, f"{beats}; {named}) cannot score this split: {problem}; decided on the threshold alone"
    scored = f"{named}: {float(champion_value):.4f} on the same test split"
    allowed = f", tolerance {tolerance:.4f}" if tolerance else ""
    if value < float(champion_value) - tolerance:
        return False, f"{metric}={value:.4f} is worse than {scored}{allowed})"
    return True, f"{beats} and is not worse than {scored}{allowed})"


def choose_branch(ti: Any, params: dict[str, Any]) -> str:
    """Branch callable: register_model when the gate passes, stop_pipeline otherwise."""
    raw = ti.xcom_pull(task_ids="evaluate_model")
    evaluation = json.loads(raw) if isinstance(raw, str) else raw
    passed, reason = decide(evaluation, float(params["threshold"]), params["metric"],
                            float(params.get("tolerance") or 0.0))
    log.info("quality gate %s: %s", "passed" if passed else "stopped the run", reason)
    ti.xcom_push(key="reason", value=reason)
    if evaluation.get("run_id"):
        mlflow_api.set_run_tags(evaluation["run_id"], {
            mlflow_api.TAG_GATE_DECISION: "passed" if passed else "stopped",
            mlflow_api.TAG_GATE_REASON: reason,
        })
    return REGISTER_TASK if passed else STOP_TASK


def report_stop(ti: Any) -> str:
    """stop_pipeline's callable: say in the task log why nothing was registered."""
    reason = ti.xcom_pull(task_ids="quality_gate", key="reason")
    log.warning("no model registered: %s", reason)
    return f"no model registered: {reason}"
