"""check_data answers at once by default, waits only when asked, and says why it skips.

The check itself (a check_data container) is replaced here by canned results;
the stack tests run the real one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from ct_tasks import step_tasks
from pipeline_steps import pipeline

NOTHING_NEW = {"new_data": False, "latest_version": "a" * 32, "staging_model_version": "2"}
NEW = {"new_data": True, "latest_version": "b" * 32, "staging_model_version": "2"}


class RecordingTaskInstance:
    """The one TaskInstance call the sensor makes: xcom_push."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class CannedSensor(step_tasks.NewDataSensor):
    """The DAG's sensor with its container check replaced by a list of results."""

    def __init__(self, *, results: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(step=pipeline.step("check_data"), **kwargs)
        self.results = list(results)
        self.checks = 0

    def check(self, context: Any) -> dict[str, Any]:  # pylint: disable=unused-argument
        self.checks += 1
        return self.results.pop(0)


def context(**params: Any) -> dict[str, Any]:
    return {"params": {"force": False, "wait_for_data_minutes": None, **params},
            "ti": RecordingTaskInstance(), "run_id": "manual__test"}


def test_nothing_new_skips_after_a_single_check_and_says_why() -> None:
    sensor, ctx = CannedSensor(results=[NOTHING_NEW]), context()
    with pytest.raises(AirflowSkipException) as skipped:
        sensor.execute(ctx)
    assert sensor.checks == 1
    reason = ("no data version is newer than the Staging model's "
              "(latest aaaaaaaaaaaa; Staging model version 2 was trained on it)")
    assert str(skipped.value) == f"skipped: {reason}"
    assert ctx["ti"].pushed["reason"] == reason
    assert ctx["ti"].pushed["return_value"]["latest_version"] == "a" * 32


def test_new_data_goes_on_with_the_check_result_as_xcom() -> None:
    sensor = CannedSensor(results=[NEW])
    assert sensor.execute(context()) == {**NEW, "forced": False}
    assert sensor.checks == 1


def test_force_goes_on_without_new_data() -> None:
    assert CannedSensor(results=[NOTHING_NEW]).execute(context(force=True)) == {**NOTHING_NEW, "forced": True}


def test_a_stack_with_nothing_published_skips_even_when_forced_and_says_what_to_do() -> None:
    unpublished = {"new_data": False, "latest_version": None, "dataset": "churn",
                   "staging_model_version": None}
    with pytest.raises(AirflowSkipException, match=r"^skipped: no data version of 'churn' is "
                       r"published yet \(make publish FILE=path/to/table.csv\)$"):
        CannedSensor(results=[unpublished]).execute(context(force=True))


def test_a_run_that_asks_to_wait_checks_again_until_data_arrives() -> None:
    sensor = CannedSensor(results=[NOTHING_NEW, NOTHING_NEW, NEW], poke_interval=0.2)
    assert sensor.execute(context(wait_for_data_minutes=1))["latest_version"] == "b" * 32
    assert sensor.checks == 3


@pytest.mark.parametrize(
    ("minutes", "run_type", "seconds"),
    [(None, "manual", 0), (None, "asset_triggered", 0), (5, "manual", 300), (0, "scheduled", 0)],
)
def test_only_a_param_or_the_scheduled_setting_makes_a_run_wait(minutes, run_type, seconds) -> None:
    assert step_tasks.wait_seconds({"wait_for_data_minutes": minutes}, run_type) == seconds


def test_scheduled_runs_wait_as_the_stack_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_tasks.stack_config, "SETTINGS",
                        dataclasses.replace(step_tasks.stack_config.SETTINGS, ct_scheduled_wait_minutes=90))
    assert step_tasks.wait_seconds({"wait_for_data_minutes": None}, "scheduled") == 5400
    assert step_tasks.wait_seconds({"wait_for_data_minutes": None}, "manual") == 0
