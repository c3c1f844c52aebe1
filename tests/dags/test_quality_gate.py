"""The quality gate: register only above the threshold and not below the Staging model."""

from __future__ import annotations

from typing import Any

import pytest


def evaluation(f1: float, staging_f1: float | None = None) -> dict[str, Any]:
    staging = None if staging_f1 is None else {"version": "3", "metrics": {"f1": staging_f1}}
    return {"metrics": {"f1": f1, "accuracy": 0.5}, "staging": staging}


class TaskInstanceXCom:
    """The two XCom calls the branch callable makes, over a plain dict."""

    def __init__(self, pulled: Any) -> None:
        self.pulled = pulled
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        assert task_ids == "evaluate_model"
        return self.pulled

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize(
    ("f1", "passed"),
    [(0.90, True), (0.85, False), (0.80, False)],
    ids=["above", "at", "below"],
)
def test_the_metric_must_beat_the_threshold(dag_module, f1: float, passed: bool) -> None:
    assert dag_module.decide(evaluation(f1), 0.85, "f1")[0] is passed


def test_a_regression_against_staging_stops_even_above_the_threshold(dag_module) -> None:
    passed, reason = dag_module.decide(evaluation(0.90, staging_f1=0.95), 0.85, "f1")
    assert passed is False
    assert "falls below the Staging model (version 3: 0.9500)" in reason


def test_matching_the_staging_model_is_not_a_regression(dag_module) -> None:
    assert dag_module.decide(evaluation(0.95, staging_f1=0.95), 0.85, "f1")[0] is True


def test_the_chosen_metric_is_the_one_compared(dag_module) -> None:
    assert dag_module.decide(evaluation(0.99), 0.85, "accuracy")[0] is False


def test_the_branch_reads_evaluate_xcom_and_names_the_next_task(dag_module) -> None:
    params = {"threshold": 0.85, "metric": "f1"}
    passing = TaskInstanceXCom('{"metrics": {"f1": 0.97}, "staging": null}')
    assert dag_module.choose_branch(passing, params) == "register_model"
    failing = TaskInstanceXCom('{"metrics": {"f1": 0.97}, "staging": null}')
    assert dag_module.choose_branch(failing, {**params, "threshold": 0.999}) == "stop_pipeline"
    assert "does not beat the threshold 0.9990" in failing.pushed["reason"]
