"""The quality gate's branch: register the model when evaluate's decision passed it, else stop and say why.

It judges nothing: the decision is made by the evaluate step (pipeline_steps/modelling/gate.py), with
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

from pipeline_steps.pipeline import GATE_TASK, REASON_KEY, STOP_TASK, step
from pipeline_steps.results import EvaluateResult

log = logging.getLogger(__name__)
EVALUATE_TASK, REGISTER_TASK = step("evaluate").name, step("register").name


def choose_branch(ti: Any) -> str:
    """Branch callable: register_model when evaluate's gate decision passed, stop_pipeline otherwise."""
    raw = ti.xcom_pull(task_ids=EVALUATE_TASK)
    evaluation: EvaluateResult = json.loads(raw) if isinstance(raw, str) else raw
    decision = (evaluation or {}).get("gate")
    if not decision:
        raise AirflowFailException(
            f"{EVALUATE_TASK}'s result has no quality gate decision: its image is older than this "
            "DAG; rebuild the images (make build-images) and run again"
        )
    passed = bool(decision["passed"])
    log.info("quality gate %s: %s", "passed" if passed else "stopped the run", decision["reason"])
    ti.xcom_push(key=REASON_KEY, value=decision["reason"])
    return REGISTER_TASK if passed else STOP_TASK


def report_stop(ti: Any) -> str:
    """stop_pipeline's callable: say in the task log why nothing was registered."""
    reason = ti.xcom_pull(task_ids=GATE_TASK, key=REASON_KEY)
    log.warning("no model registered: %s", reason)
    return f"no model registered: {reason}"
