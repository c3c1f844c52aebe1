"""Closing the loop on the stack: serve -> log -> label -> monitor -> new data version -> retrain.

These run after test_stack_e2e.py on the same stack, when Production holds a version. The
stack's monitor runs only on demand here (CT_MONITOR_SCHEDULE=none: an hourly run could take a
test's window), any drifted column notifies (MONITOR_MAX_DRIFT_SHARE=0) and a monitor run has a
one-minute deadline (conftest.STACK_ENV). Traffic goes to the model server, labels through `make
feedback`, and each monitor run is `make monitor`, as a user types them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import time
from pathlib import Path

import pandas as pd

from pipeline_steps.monitoring.window import SETTLE_SECONDS, WATERMARK
from pipeline_steps.serving.feedback import FEEDBACK_PREFIX
from pipeline_steps.serving.prediction_log import LOG_PREFIX
from tests.stack.conftest import Stack, stack_command
from tests.stack.test_stack_e2e import (DAG_ID, answer, data_object_key, mlflow_client, production,
                                        published_pointer, step_containers, wait_for_state)

MODEL = "ct-xgboost"
MONITOR_DAG = "monitor_production"
LOG_BUCKET = "prediction-log"
LABELLED = 36  # above MONITOR_MIN_LABELLED_ROWS (30)


def training_table(stack: Stack) -> pd.DataFrame:
    """The published training table."""
    key = data_object_key(published_pointer(stack)["md5"])
    return pd.read_csv(io.BytesIO(stack.s3().get_object(Bucket="dvc-data", Key=key)["Body"].read()))


def shifted_records(stack: Stack, count: int) -> tuple[list[dict], str]:
    """``count`` rows of the training table, without the label, with their first column three times
    as large (far outside what the model was trained on); and that column."""
    table = training_table(stack).drop(columns=["target"]).head(count)
    column = str(table.columns[0])
    table[column] = table[column] * 3
    return table.to_dict(orient="records"), column


def settled(stack: Stack, prefix: str, since: dt.datetime) -> None:
    """Wait until an object under ``prefix`` written after ``since`` is in the log and old enough for a
    window listed now to hold it."""
    deadline = time.monotonic() + 60
    while True:
        listed = stack.s3().list_objects_v2(Bucket=LOG_BUCKET, Prefix=prefix).get("Contents", [])
        newest = max((item["LastModified"] for item in listed), default=None)
        if newest is not None and newest >= since:
            break
        assert time.monotonic() < deadline, f"nothing under s3://{LOG_BUCKET}/{prefix} written since {since}"
        time.sleep(1)
    time.sleep(max(0.0, (newest - dt.datetime.now(dt.timezone.utc)).total_seconds()) + SETTLE_SECONDS + 2)


def answered(stack: Stack, records: list[dict]) -> dict:
    """The model server's answer to ``records``, once it is in the prediction log."""
    since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    reply = stack.model_server().predict(records)
    assert reply.status == 200, reply
    settled(stack, f"{LOG_PREFIX}/model={MODEL}/", since)
    return reply.body


def monitor(stack: Stack) -> tuple[str, str, float]:
    """`make monitor`: its last line (after the DAG's name), the run it started, and the seconds it took."""
    client = stack.airflow()
    client.wait_until_idle(MONITOR_DAG)
    before = {run["dag_run_id"] for run in client.runs(MONITOR_DAG)}
    started = time.monotonic()
    done = stack_command("make", "monitor")
    seconds = time.monotonic() - started
    [run_id] = [run["dag_run_id"] for run in client.runs(MONITOR_DAG) if run["dag_run_id"] not in before]
    stack.runs.append(run_id)
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{MONITOR_DAG}: "), line
    return line.removeprefix(f"{MONITOR_DAG}: "), run_id, seconds


def test_a_monitor_run_with_no_new_predictions_ends_in_seconds_saying_so(stack: Stack) -> None:
    monitor(stack)  # whatever the earlier tests left in the log (batch scoring's rows) is measured first
    line, run_id, seconds = monitor(stack)
    print(f"phase make monitor with nothing new: {seconds:.0f}s")
    assert line.startswith(f"skipped: nothing new in the prediction log of {MODEL} since "), line
    assert line.endswith(": measured nothing"), line
    states = stack.airflow().task_states(run_id, MONITOR_DAG)
    assert states == {"monitor_production": "skipped", "publish_data": "skipped"}


def test_a_monitor_run_whose_step_sleeps_past_its_deadline_notifies_while_it_still_runs(stack: Stack) -> None:
    client = stack.airflow()
    client.wait_until_idle(MONITOR_DAG)
    run_id = client.trigger({}, MONITOR_DAG)
    stack.runs.append(run_id)
    deadline = time.monotonic() + 120
    while not (containers := step_containers(**{"ct.step": "monitor_production", "ct.dag_run": run_id})):
        assert time.monotonic() < deadline, "the monitor's step container never started"
        time.sleep(0.2)
    subprocess.run(["docker", "pause", containers[0]], check=True, capture_output=True)  # the step sleeps
    try:
        message = stack.notifications.wait_for(timeout=180, run_id=run_id, outcome="late")
        assert client.run(run_id, MONITOR_DAG)["state"] == "running"
    finally:
        subprocess.run(["docker", "unpause", containers[0]], check=False, capture_output=True)
    assert message["dag_id"] == MONITOR_DAG
    assert message["reason"].startswith("not finished 1 min after it was queued "
                                        "(CT_MONITOR_DEADLINE_MINUTES)")
    assert message["url"].startswith(f"{stack.airflow_url}/dags/{MONITOR_DAG}/runs/")
    assert client.follow(run_id, dag_id=MONITOR_DAG, timeout=300) == "success"


def test_traffic_with_a_shifted_column_is_reported_drifted_logged_and_notified(stack: Stack) -> None:
    records, column = shifted_records(stack, 60)
    answered(stack, records)

    line, run_id, _ = monitor(stack)

    assert line.startswith("60 predictions and 0 labelled rows since "), line
    result = stack.airflow().xcom(run_id, "monitor_production", dag_id=MONITOR_DAG)
    assert column in result["drift"]["drifted_columns"]
    assert [trigger["kind"] for trigger in result["triggers"]] == ["drift"]
    client = mlflow_client(stack)
    run = client.get_run(result["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == f"{MODEL}-monitoring"
    assert column in run.data.tags["drifted_columns"].split(", ")
    assert run.data.metrics["rows"] == 60
    assert "drift_report.html" in {artifact.path for artifact in client.list_artifacts(result["run_id"])}
    message = stack.notifications.wait_for(run_id=run_id, outcome="triggered")
    assert message["task_id"] == "monitor_production" and "columns drifted" in message["reason"], message
    # Drift alone retrains nothing.
    assert stack.airflow().task_states(run_id, MONITOR_DAG)["publish_data"] == "skipped"


def wrong_labels_fed_back(stack: Stack, reply: dict, tmp_path: Path) -> list[int]:
    """`make feedback` with a file saying the model was wrong on every record of its answer (the other
    class), once the labels are in the log; the labels."""
    labels = [1 - int(prediction["label"]) for prediction in reply["predictions"]]
    path = tmp_path / "labels.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["request_id", "row", "label"])
        writer.writerows([reply["request_id"], row, label] for row, label in enumerate(labels))
    since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    fed = stack_command("make", "feedback", f"FILE={path}")
    assert fed.stdout.strip().splitlines()[-1].startswith(f"stored {len(labels)} label"), fed.stdout
    settled(stack, f"{FEEDBACK_PREFIX}/model={MODEL}/", since)
    return labels


def appended(stack: Stack, before: dict, after: dict) -> pd.DataFrame:
    """The rows of data version ``after`` past those of ``before``, which it starts with byte for byte."""
    old, new = (stack.s3().get_object(Bucket="dvc-data", Key=data_object_key(pointer["md5"]))["Body"].read()
                for pointer in (before, after))
    assert new.startswith(old)
    return pd.read_csv(io.BytesIO(new)).tail(after["rows"] - before["rows"])


def started_by_data(stack: Stack, since: str) -> list[str]:
    """The training runs an Asset event (a published data version) started since then."""
    return [run["dag_run_id"] for run in stack.airflow().runs(DAG_ID)
            if run.get("run_type") == "asset_triggered" and (run.get("queued_at") or "") > since]


def test_labels_where_the_model_is_wrong_publish_exactly_those_rows_once_and_retrain_to_production(
        stack: Stack, tmp_path: Path) -> None:
    before = published_pointer(stack)
    records, _ = shifted_records(stack, LABELLED)
    labels = wrong_labels_fed_back(stack, answered(stack, records), tmp_path)
    queued_after = dt.datetime.now(dt.timezone.utc).isoformat()

    line, run_id, _ = monitor(stack)

    assert f"on {LABELLED} labelled rows is below 0.8500" in line, line
    assert f"plus {LABELLED} labelled production rows" in line, line
    after = published_pointer(stack)
    assert after["md5"] == stack.airflow().xcom(run_id, "publish_data", dag_id=MONITOR_DAG)["md5"]
    assert after["md5"] != before["md5"]
    assert after["rows"] == before["rows"] + LABELLED
    # Exactly those rows were added: the records the server was asked, with the labels sent back.
    added = appended(stack, before, after)
    sent = pd.DataFrame(records).assign(target=labels)[list(added.columns)]
    pd.testing.assert_frame_equal(*(frame.sort_values(list(frame.columns)).reset_index(drop=True)
                                    for frame in (added, sent)), check_dtype=False)

    # The Asset event started a training run by itself; it registers, and waits for a person.
    client = stack.airflow()
    retrain = client.first_run_since(queued_after, DAG_ID, timeout=120)
    stack.runs.append(retrain)
    assert started_by_data(stack, queued_after) == [retrain]
    wait_for_state(stack, retrain, "approve_promotion", {"awaiting_input"}, timeout=900)
    registered = client.xcom(retrain, "register")
    version = mlflow_client(stack).get_model_version(MODEL, registered["version"])
    assert version.tags["data_version"] == after["md5"]
    window_run = client.xcom(run_id, "monitor_production", dag_id=MONITOR_DAG)["run_id"]
    assert version.tags["feedback_windows"].startswith(f"monitor run {window_run} ({LABELLED} rows,")
    state, tasks = answer(stack, retrain, "Approve")
    assert state == "success" and tasks["promote"] == "success"
    assert production(stack).version == registered["version"]
    stack.model_server().wait_for_version(registered["version"], timeout=30)

    # The same window again (its watermark lost): the rows were appended once, so nothing is published.
    stack.s3().delete_object(Bucket=LOG_BUCKET, Key=WATERMARK.format(model=MODEL))
    line, again, _ = monitor(stack)
    assert line.endswith(f"no new data version: 0 of the {LABELLED} labelled rows were not appended before: "
                         "fewer than MONITOR_MIN_LABELLED_ROWS (30); no data version published"), line
    assert stack.airflow().task_states(again, MONITOR_DAG)["publish_data"] == "skipped"
    assert published_pointer(stack)["md5"] == after["md5"]
    assert started_by_data(stack, queued_after) == [retrain]
