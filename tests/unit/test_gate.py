"""The quality gate: register only above the threshold and no worse than Staging on the same rows.

One function decides for the DAG and for the local pipeline (pipeline_steps/gate.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_steps.modelling import gate
from pipeline_steps.settings import load_settings


def evaluation(f1: float, staging_f1: float | None = None) -> dict[str, Any]:
    champion = (None if staging_f1 is None
                else {"version": "3", "scored": True, "metrics": {"f1": staging_f1},
                      "test_rows": 114, "seen_rows": 0, "compared_rows": 114})
    return {"metrics": {"f1": f1, "accuracy": 0.5}, "champion": champion}


UNSEEN = "it was trained on none of these 114 test rows"


@pytest.mark.parametrize(
    ("f1", "passed"),
    [(0.90, True), (0.85, False), (0.80, False)],
    ids=["above", "at", "below"],
)
def test_the_metric_must_beat_the_threshold(f1: float, passed: bool) -> None:
    assert gate.decide(evaluation(f1), 0.85, "f1")[0] is passed


def test_a_regression_against_staging_on_the_same_rows_stops_even_above_the_threshold() -> None:
    passed, reason = gate.decide(evaluation(0.90, staging_f1=0.95), 0.85, "f1")
    assert passed is False
    assert reason == ("f1=0.9000 is worse than the Staging model (version 3: 0.9500 on the same test split); "
                      f"{UNSEEN}")


def test_matching_the_staging_model_is_not_a_regression() -> None:
    passed, reason = gate.decide(evaluation(0.95, staging_f1=0.95), 0.85, "f1")
    assert passed is True
    assert reason == ("f1=0.9500 beats the threshold 0.8500 and is not worse than "
                      f"the Staging model (version 3: 0.9500 on the same test split); {UNSEEN}")


@pytest.mark.parametrize(("f1", "passed"), [(0.93, True), (0.92, True), (0.9199, False)])
def test_the_tolerance_allows_a_small_step_back_and_no_more(f1: float, passed: bool) -> None:
    decided, reason = gate.decide(evaluation(f1, staging_f1=0.95), 0.85, "f1", tolerance=0.03)
    assert decided is passed
    assert reason.endswith(f"(version 3: 0.9500 on the same test split, tolerance 0.0300); {UNSEEN}")


def test_a_staging_model_trained_on_some_test_rows_is_compared_on_the_others_and_says_so() -> None:
    seen = evaluation(0.95, staging_f1=0.97)
    seen["champion"].update(seen_rows=24, compared_rows=90, challenger_value=0.98)
    assert gate.decide(seen, 0.85, "f1") == (True, (
        "f1=0.9500 beats the threshold 0.8500 (f1=0.9800 on those rows) and is not worse than the Staging "
        "model (version 3: 0.9700 on the 90 test rows it was not trained on); it was trained on the other "
        "24 of the split's 114, left out of the comparison"))


def test_a_staging_model_that_records_no_training_rows_is_compared_and_says_that_is_unknown() -> None:
    legacy = evaluation(0.95, staging_f1=0.95)
    legacy["champion"]["seen_rows"] = None
    assert gate.decide(legacy, 0.85, "f1")[1].endswith(
        "(version 3: 0.9500 on the same test split); whether it was trained on any of these test rows is "
        "unknown (it was registered before training rows were recorded)")


def test_more_than_a_few_rows_left_out_of_the_table_are_in_the_reason_and_a_few_are_not() -> None:
    many = {**evaluation(0.95), "rows": {"raw": 1316, "dropped": {"duplicate": 1296}}}
    assert gate.decide(many, 0.85, "f1")[1] == (
        "f1=0.9500 beats the threshold 0.8500; no Staging model yet; 1296 of 1316 rows (98%) left out "
        "before the split: 1296 duplicate rows")
    few = {**evaluation(0.95), "rows": {"raw": 1316, "dropped": {"unlabelled": 13}}}
    assert gate.decide(few, 0.85, "f1")[1] == "f1=0.9500 beats the threshold 0.8500; no Staging model yet"


def test_a_staging_model_that_cannot_score_the_split_leaves_the_threshold_to_decide() -> None:
    unscored = {**evaluation(0.90), "champion": {
        "version": "3", "scored": False, "metrics": {},
        "problem": "its feature(s) age are not in this split"}}
    assert gate.decide(unscored, 0.85, "f1") == (True, (
        "f1=0.9000 beats the threshold 0.8500; the Staging model (version 3) cannot score this "
        "split: its feature(s) age are not in this split; decided on the threshold alone"))
    assert gate.decide(unscored, 0.95, "f1")[0] is False


def test_the_first_model_is_judged_on_the_threshold_alone() -> None:
    assert gate.decide(evaluation(0.9), 0.85, "f1") == (
        True, "f1=0.9000 beats the threshold 0.8500; no Staging model yet")


def test_the_chosen_metric_is_the_one_compared() -> None:
    assert gate.decide(evaluation(0.99), 0.85, "accuracy")[0] is False


def test_a_schema_change_since_staging_is_reported_and_does_not_decide() -> None:
    changed = {**evaluation(0.95, staging_f1=0.9),
               "schema_changes": ["feature(s) gone: age", "new class(es): maybe"]}
    passed, reason = gate.decide(changed, 0.85, "f1")
    assert passed is True
    assert reason.endswith(
        "; schema changed since the Staging model: feature(s) gone: age; new class(es): maybe")


def test_data_drift_is_reported_and_does_not_decide() -> None:
    drifted = {**evaluation(0.95, staging_f1=0.9),
               "drift_line": "data drift since the Staging model's data: 2 of 30 columns drifted (7%): a, b"}
    passed, reason = gate.decide(drifted, 0.85, "f1")
    assert passed is True
    assert reason.endswith("; data drift since the Staging model's data: 2 of 30 columns drifted (7%): a, b")


def test_the_judgement_carries_the_decision_and_the_settings_it_used() -> None:
    settings = load_settings({"QUALITY_THRESHOLD": "0.95", "QUALITY_METRIC": "f1",
                              "QUALITY_TOLERANCE": "0.01"})
    assert gate.judge(settings, evaluation(0.9)) == {
        "decision": "stopped", "passed": False, "reason": "f1=0.9000 does not beat the threshold 0.9500",
        "metric": "f1", "threshold": 0.95, "tolerance": 0.01,
    }
    assert gate.judge(load_settings({}), evaluation(0.9))["decision"] == "passed"
