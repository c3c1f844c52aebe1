"""make bench-dag's arithmetic: a run's wall time split into scheduling, task runner, container,
imports and step work, from Airflow's task instances, `docker events` and the steps' timing lines."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
dag = importlib.import_module("dag")

T0 = 1_800_000_000.0  # the run's start, seconds since the epoch
RUN_ID = "manual__2027-01-15T08:00:00+00:00"


def iso(offset: float) -> str:
    return dt.datetime.fromtimestamp(T0 + offset, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def instance(task_id: str, queued: float, start: float, end: float, state: str = "success") -> dict:
    return {"task_id": task_id, "state": state, "try_number": 1, "queued_when": iso(queued),
            "start_date": iso(start), "end_date": iso(end)}


def event(action: str, at: float, run_id: str = RUN_ID, container: str = "c1") -> dict:
    return {"Type": "container", "Action": action, "id": container, "timeNano": int((T0 + at) * 1e9),
            "Actor": {"ID": container, "Attributes": {"ct.dag_run": run_id, "ct.step": "prepare"}}}


def timing(started: float, imported: float, finished: float) -> dict:
    return {"step": "prepare", "started": T0 + started, "imported": T0 + imported, "finished": T0 + finished}


@pytest.fixture
def run() -> dict:
    """A two-task run: prepare in a container (1 s of work), then the gate without one."""
    run_info = {"dag_run_id": RUN_ID, "queued_at": iso(-1.5), "start_date": iso(0), "end_date": iso(10)}
    instances = [
        instance("prepare", queued=0.5, start=1.0, end=5.0),
        instance("quality_gate", queued=6.0, start=6.5, end=9.0),
        # The branch's other side: skipped, given a start and an end, never queued.
        instance("stop_pipeline", queued=0, start=9.0, end=9.0, state="skipped") | {"queued_when": None},
    ]
    boxes = dag.containers([event("create", 1.5), event("start", 1.7), event("die", 4.2)], RUN_ID)
    return dag.breakdown(run_info, instances, boxes, {"prepare": timing(2.0, 2.5, 3.5)})


def test_the_timing_line_is_found_in_a_task_log_whatever_comes_before_it() -> None:
    line = dag.STACK.airflow_client.format_log_event(
        {"timestamp": "2027-01-15T08:00:03Z", "level": "info",
         "event": 'ct.timing {"finished": 3.5, "imported": 2.5, "started": 2.0, "step": "prepare"}'})
    assert dag.step_timing(["[2027] INFO starting", line]) == {
        "finished": 3.5, "imported": 2.5, "started": 2.0, "step": "prepare"}
    assert dag.step_timing(["no timing here", '{"version": 3}']) is None


def test_only_this_runs_containers_that_were_created_and_died_count() -> None:
    events = [event("create", 1, container="a"), event("start", 1.2, container="a"),
              event("die", 3, container="a"), event("destroy", 3.1, container="a"),
              event("create", 2, run_id="manual__other", container="b"),
              event("die", 4, run_id="manual__other", container="b"),
              event("create", 5, container="still-running")]
    assert dag.containers(events, RUN_ID) == [{"create": T0 + 1, "start": T0 + 1.2, "die": T0 + 3}]


def test_a_runs_parts_add_up_to_its_wall_time(run: dict) -> None:
    assert run["wall"] == pytest.approx(10)
    assert run["work"] == pytest.approx(1)
    assert run["overhead"] == pytest.approx(9)
    assert run["run_queued"] == pytest.approx(1.5)
    parts = run["parts"]
    assert sum(parts.values()) == pytest.approx(run["wall"])
    assert parts["tail"] == pytest.approx(1)


def test_each_task_is_split_where_its_container_and_step_say(run: dict) -> None:
    prepare, gate = run["tasks"]
    assert prepare["task"] == "prepare"
    expected = {"scheduling": 0.5, "queued": 0.5, "runner_before": 0.5, "container_start": 0.5,
                "imports": 0.5, "work": 1.0, "container_exit": 0.7, "runner_after": 0.8}
    assert {key: prepare[key] for key in expected} == pytest.approx(expected)
    # The gate starts no container: all of its time is the task runner's.
    assert gate["task"] == "quality_gate"
    assert {key: gate[key] for key in ("scheduling", "queued", "runner_only")} == pytest.approx(
        {"scheduling": 1.0, "queued": 0.5, "runner_only": 2.5})
    assert "work" not in gate


def test_the_summary_takes_medians_over_runs_and_the_table_has_a_row_per_task(run: dict) -> None:
    slower = json.loads(json.dumps(run))
    slower["wall"], slower["overhead"] = 14.0, 13.0
    summary = dag.summarise([run, slower, run])
    assert summary["runs"] == 3
    assert summary["wall"] == pytest.approx(10)
    assert summary["overhead_max"] == pytest.approx(13)
    assert summary["tasks"]["prepare"]["work"] == pytest.approx(1)
    assert summary["tasks"]["prepare"]["total"] == pytest.approx(5.0)  # from the run start to its end
    groups = summary["overhead_by_group"]
    assert sum(groups.values()) + summary["work"] == pytest.approx(summary["wall"])
    lines = dag.table(summary)
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| prepare", "| quality_gate"]
    assert lines[-1].startswith("| **run**")
