"""The quality gate's branch: register the model when evaluate's decision passed it, else stop and say why.

The decision itself is made by the evaluate step (pipeline_steps/gate.py), with
the run's threshold, metric and tolerance Params passed to its container, so the
DAG and the local pipeline (`dvc repro`) run one implementation. Here the branch
only reads it; the reason travels on in XCom, to the notification and to
`make run`'s last line, and evaluate has already tagged the run with it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)
REGISTER_TASK = "register_model"
STOP_TASK = "stop_pipeline"
EVALUATE_TASK = "evaluate_model"


def choose_branch(ti: Any) -> str:
    """Branch callable: register_model when evaluate's gate decision passed, stop_pipeline otherwise."""
    raw = ti.xcom_pull(task_ids=EVALUATE_TASK)
    evaluation = json.loads(raw) if isinstance(raw, str) else raw
    decision = (evaluation or {}).get("gate")
    if not decision:
        raise AirflowFailException(
            "evaluate_model's result has no quality gate decision: its image is older than this "
            "DAG; rebuild the images (make build-images) and run again"
        )
    passed = bool(decision["passed"])
    log.info("quality gate %s: %s", "passed" if passed else "stopped the run", decision["reason"])
    ti.xcom_push(key="reason", value=decision["reason"])
    return REGISTER_TASK if passed else STOP_TASK


def report_stop(ti: Any) -> str:
    """stop_pipeline's callable: say in the task log why nothing was registered."""
    reason = ti.xcom_pull(task_ids="quality_gate", key="reason")
    log.warning("no model registered: %s", reason)
    return f"no model registered: {reason}"
