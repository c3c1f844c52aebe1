"""`make run` / `make follow` end when the run they follow cannot start until a person answers.

The DAG runs one at a time, so a run queued behind a run whose promotion waits for an
answer waits for that person too. Following it would block for hours; the follower
says so and ends, whenever the run ahead starts waiting: already at trigger time, or
only later, while the follower is already watching the queued run.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.host_scripts import airflow_client


class ScriptedAirflow(airflow_client.AirflowClient):
    """An Airflow whose answers follow a script: one (run state, pending approvals) per poll."""

    # pylint: disable=unused-argument  # the client's signatures; one run, one DAG here

    def __init__(self, timeline: list[tuple[str, list[str]]]) -> None:  # pylint: disable=super-init-not-called
        # No login: every call a follow makes is answered below.
        self.timeline = timeline
        self.polls = 0

    def run(self, run_id: str, dag_id: str = airflow_client.DAG_ID) -> dict[str, Any]:
        self.polls += 1
        return {"state": self.timeline[min(self.polls, len(self.timeline)) - 1][0]}

    def task_states(self, run_id: str, dag_id: str = airflow_client.DAG_ID) -> dict[str, str | None]:
        return {"check_data": None}

    def pending_approvals(self, dag_id: str = airflow_client.DAG_ID) -> list[str]:
        return self.timeline[min(self.polls, len(self.timeline)) - 1][1]


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_client.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(airflow_client, "QUEUED_CHECK_SECONDS", 0)


def test_a_run_queued_behind_a_waiting_promotion_ends_the_follow_at_once() -> None:
    airflow = ScriptedAirflow([("queued", ["scheduled__ahead"])])
    assert airflow.follow("manual__new", timeout=3, out=io.StringIO()) == airflow_client.QUEUED_BEHIND
    assert airflow.polls == 1


def test_the_follow_ends_when_the_run_ahead_starts_waiting_only_later() -> None:
    airflow = ScriptedAirflow([("queued", []), ("queued", []), ("queued", ["scheduled__ahead"])])
    assert airflow.follow("manual__new", timeout=3, out=io.StringIO()) == airflow_client.QUEUED_BEHIND
    assert airflow.polls == 3


def test_a_queued_run_with_nothing_waiting_ahead_is_followed_to_its_end() -> None:
    airflow = ScriptedAirflow([("queued", []), ("running", []), ("success", [])])
    assert airflow.follow("manual__new", timeout=3, out=io.StringIO()) == "success"
