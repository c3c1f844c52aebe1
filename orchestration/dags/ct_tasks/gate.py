"""The quality gate: register a model only when it beats the threshold and the Staging model.

A pure function (`decide`) with its reason, and the two callables the DAG runs
around it: the branch that picks the next task and the stop that reports why.
The reason travels on in XCom, to the notification and to `make run`'s last line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)
REGISTER_TASK = "register_model"
STOP_TASK = "stop_pipeline"


def decide(evaluation: dict[str, Any], threshold: float, metric: str) -> tuple[bool, str]:
    """Beat the threshold and do not fall below the Staging model; say why either way.

    A schema change since the Staging model (a feature gone, a new class) does not
    decide anything, but the reason always says so: it is never silent.
    """
    passed, reason = _compare(evaluation, threshold, metric)
    changes = evaluation.get("schema_changes") or []
    if changes:
        reason += f"; schema changed since the Staging model: {'; '.join(changes)}"
    return passed, reason


def _compare(evaluation: dict[str, Any], threshold: float, metric: str) -> tuple[bool, str]:
    value = float(evaluation["metrics"][metric])
    if not value > threshold:
        return False, f"{metric}={value:.4f} does not beat the threshold {threshold:.4f}"
    staging = evaluation.get("staging") or {}
    staging_value = (staging.get("metrics") or {}).get(metric)
    if staging_value is None:
        return True, f"{metric}={value:.4f} beats the threshold {threshold:.4f}; no Staging model yet"
    staging_text = f"the Staging model (version {staging.get('version')}: {float(staging_value):.4f})"
    if value < float(staging_value):
        return False, f"{metric}={value:.4f} falls below {staging_text}"
    return True, f"{metric}={value:.4f} beats the threshold {threshold:.4f} and is not below {staging_text}"


def choose_branch(ti: Any, params: dict[str, Any]) -> str:
    """Branch callable: register_model when the gate passes, stop_pipeline otherwise."""
    raw = ti.xcom_pull(task_ids="evaluate_model")
    evaluation = json.loads(raw) if isinstance(raw, str) else raw
    passed, reason = decide(evaluation, float(params["threshold"]), params["metric"])
    log.info("quality gate %s: %s", "passed" if passed else "stopped the run", reason)
    ti.xcom_push(key="reason", value=reason)
    return REGISTER_TASK if passed else STOP_TASK


def report_stop(ti: Any) -> str:
    """stop_pipeline's callable: say in the task log why nothing was registered."""
    reason = ti.xcom_pull(task_ids="quality_gate", key="reason")
    log.warning("no model registered: %s", reason)
    return f"no model registered: {reason}"
