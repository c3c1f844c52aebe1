"""The quality gate's branch follows evaluate's decision and says why it stopped."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ct_tasks import gate_branch as gate


def evaluated(passed: bool, reason: str) -> dict[str, Any]:
    return {"metrics": {"f1": 0.9}, "gate": {"decision": "passed" if passed else "stopped",
                                             "passed": passed, "reason": reason}}


class TaskInstanceXCom:
    """The XCom calls the gate's callables make, over a plain dict."""

    def __init__(self, pulled: Any) -> None:
        self.pulled = pulled
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        if task_ids == "quality_gate":
            return self.pushed[key]
        assert (task_ids, key) == ("evaluate", "return_value")
        return self.pulled

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_the_branch_follows_evaluates_decision_and_names_the_next_task() -> None:
    passing = TaskInstanceXCom(evaluated(True, "f1=0.9000 beats the threshold 0.8500; no Staging model yet"))
    assert gate.choose_branch(passing) == "register"
    failing = TaskInstanceXCom(
        '{"gate": {"passed": false, "reason": "f1=0.9700 does not beat the threshold 0.9990"}}')
    assert gate.choose_branch(failing) == "stop_pipeline"
    assert failing.pushed["reason"] == "f1=0.9700 does not beat the threshold 0.9990"


def test_the_stop_says_why_nothing_was_registered() -> None:
    ti = TaskInstanceXCom(evaluated(False, "f1=0.5000 does not beat the threshold 0.8500"))
    gate.choose_branch(ti)
    assert gate.report_stop(ti) == "no model registered: f1=0.5000 does not beat the threshold 0.8500"


def test_an_evaluation_without_a_decision_fails_naming_the_cause() -> None:
    with pytest.raises(AirflowFailException, match="no quality gate decision: its image is older"):
        gate.choose_branch(TaskInstanceXCom({"metrics": {"f1": 0.9}}))
