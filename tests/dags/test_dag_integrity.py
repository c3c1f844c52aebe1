"""The DAGs as specified: they parse, their tasks and edges, operators, images and callbacks."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from airflow.dag_processing.dagbag import DagBag
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.http.notifications.http import HttpNotifier
from airflow.sdk.definitions.deadline import DeadlineReference
from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import AssetOrTimeSchedule, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from ct_tasks import dag_defaults, notify, promotion, stack_config
from ct_tasks.step_tasks import NewDataSensor, StepOperator
from pipeline_steps import pipeline

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "orchestration" / "dags"
RUN_ID_PATH = "{{ dag_run.run_id | replace(':', '-') | replace('+', '-') }}"
PARAMS_YAML = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
EDGES = {
    "check_data": {"prepare"},
    "prepare": {"check_drift"},
    "check_drift": {"tune", "train"},
    "tune": {"train"},
    "train": {"evaluate"},
    "evaluate": {"quality_gate"},
    "quality_gate": {"register", "stop_pipeline"},
    "register": {"approve_promotion"},
    "approve_promotion": {"promote", "keep_production"},
    "promote": set(),
    "keep_production": set(),
    "stop_pipeline": set(),
}
STEP_IMAGES = {
    "prepare": "ct-prepare:latest",
    "check_drift": "ct-check-drift:latest",
    "tune": "ct-tune:latest",
    "train": "ct-train:latest",
    "evaluate": "ct-evaluate:latest",
    "register": "ct-register:latest",
    "promote": "ct-promote:latest",
}


def test_the_dag_folder_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == ["batch_scoring", "ml_training_pipeline", "monitor_production",
                                   "rollback_production"]


def test_a_broken_dag_file_is_reported_as_an_import_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken_dag.py"
    broken.write_text("from airflow.sdk import DAG\nwith DAG(dag_id='broken') as dag:\n    undefined_name\n")
    errors = DagBag(dag_folder=str(tmp_path)).import_errors
    assert list(errors) == [str(broken)]
    assert "NameError" in errors[str(broken)]


def test_tasks_and_edges_are_as_specified(dag) -> None:
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == EDGES


def test_each_task_has_its_operator_type(dag) -> None:
    assert isinstance(dag.get_task("check_data"), NewDataSensor)
    assert isinstance(dag.get_task("quality_gate"), BranchPythonOperator)
    assert isinstance(dag.get_task("stop_pipeline"), PythonOperator)
    assert isinstance(dag.get_task("keep_production"), PythonOperator)
    for task_id, image in STEP_IMAGES.items():
        task = dag.get_task(task_id)
        assert isinstance(task, StepOperator) and isinstance(task, DockerOperator), task_id
        assert task.image == image


def test_step_containers_are_safe_to_retry(dag) -> None:
    for task_id in [*STEP_IMAGES, "check_data"]:
        task = dag.get_task(task_id)
        assert task.retries >= 1 and task.retry_exponential_backoff, task_id
        assert task.execution_timeout == timedelta(minutes=30), task_id
    for task_id in STEP_IMAGES:
        task = dag.get_task(task_id)
        assert task.mount_tmp_dir is False
        assert task.network_mode == "mlops"
        # Secrets reach the container at run time only (private_environment), never the DAG.
        assert not {"AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD"} & set(task.environment)
        assert task.environment["XGB_PARAMS"] == "{{ (params.get('xgb_params') or {}) | tojson }}"
        # The run's gate Params reach evaluate, which decides (pipeline_steps/modelling/gate.py).
        for name, param in (("QUALITY_THRESHOLD", "threshold"), ("QUALITY_METRIC", "metric"),
                            ("QUALITY_TOLERANCE", "tolerance"), ("MAX_DRIFT_SHARE", "max_drift_share")):
            assert task.environment[name] == (
                f"{{{{ '' if params.get('{param}') is none else params.get('{param}') }}}}")
        # params.yaml itself, since a step container can mount nothing, and every step setting.
        assert json.loads(task.environment["CT_PARAMS"]) == PARAMS_YAML
        assert task.environment["SEED"] == "42" and task.environment["DATASET_NAME"] == "breast_cancer"
        assert f"--output s3://pipeline-runs/runs/{RUN_ID_PATH}/{task_id}" in task.command


def test_promotion_asks_a_person_to_approve_or_reject_and_rejects_when_nobody_answers(dag) -> None:
    approval = dag.get_task("approve_promotion")
    assert isinstance(approval, HITLBranchOperator)
    assert approval.options == ["Approve", "Reject"]
    assert approval.options_mapping == {"Approve": "promote", "Reject": "keep_production"}
    assert approval.defaults == ["Reject"]
    assert approval.response_timeout == timedelta(hours=24)
    assert "--version '{{ ti.xcom_pull(task_ids='register')['version'] | string | replace(\"'\", '') }}'" in \
        dag.get_task("promote").command


def test_the_approval_request_shows_the_candidate_beside_staging_and_production() -> None:
    registered = {
        "model_name": "ct-xgboost", "version": "3", "run_id": "abc", "experiment_id": "1",
        "data_version": "d3", "metrics": {"f1": 0.97, "accuracy": 0.96},
        "champion": {"version": "2", "scored": True, "metrics": {"f1": 0.95, "accuracy": 0.94}},
        "production": {"version": "1", "run_id": "def", "experiment_id": "1",
                       "metrics": {"f1": 0.93, "accuracy": 0.92}},
    }
    body = promotion.request_body(registered, "f1=0.9700 beats the threshold 0.8500 and ...")
    assert "| metric | candidate v3 | Staging v2 (same rows) | Production v1 (its own test rows) |" in body
    assert "| f1 | 0.9700 | 0.9500 | 0.9300 |" in body
    assert "(http://localhost:5000/#/experiments/1/runs/abc)" in body
    assert "keeps Production as it is (version 1)" in body
    first = {**registered, "champion": None, "production": None}
    assert "| metric | candidate v3 |\n" in promotion.request_body(first, "")
    assert "keeps Production as it is (no model yet)" in promotion.request_body(first, "")


def test_rollback_is_one_step_started_by_hand(dagbag) -> None:
    rollback = dagbag.dags["rollback_production"]
    assert type(rollback.timetable).__name__ == "NullTimetable"  # schedule=None
    [task] = rollback.tasks
    assert isinstance(task, StepOperator) and task.image == "ct-rollback:latest"
    assert task.command == ""
    assert task.retries == 0  # a retry after a half-done rollback could go back one version too far


def test_the_data_check_never_reschedules(dag) -> None:
    # A reschedule-mode sensor can be failed by the scheduler itself (apache/airflow#71172).
    sensor = dag.get_task("check_data")
    assert isinstance(sensor, BaseSensorOperator)
    assert sensor.mode == "poke"
    assert sensor.soft_fail is False  # a failed check is a failure; "nothing new" is a skip


def test_runs_on_new_data_and_daily_one_at_a_time(dag) -> None:
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert "s3://dvc-data/published/breast_cancer.json" in repr(dag.timetable.asset_condition)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "quality_gate" in dag.doc_md


def test_params_default_to_params_yaml_and_the_stack_settings(dag) -> None:
    assert dag.params["threshold"] == PARAMS_YAML["gate"]["threshold"] == 0.85
    assert dag.params["metric"] == PARAMS_YAML["gate"]["metric"] == "f1"
    assert dag.params["force"] is False
    assert dag.params["tolerance"] == PARAMS_YAML["gate"]["tolerance"] == 0.0
    assert dag.params["max_drift_share"] is None
    assert dag.params["auto_approve"] is False
    assert dag.params["wait_for_data_minutes"] is None
    assert dag.params["xgb_params"] == PARAMS_YAML["train"]["xgb"]
    assert dag.params["tune"] is PARAMS_YAML["tune"]["enabled"] is False


def test_tuning_runs_only_when_the_run_asks_and_train_then_fits_with_its_best(dag) -> None:
    tune, train = dag.get_task("tune"), dag.get_task("train")
    assert tune.run_when == "{{ params.tune }}"
    assert "{% if params.tune %} --tuned s3://pipeline-runs/runs/" in train.command
    # Skipped tune lets train run; a run check_drift stopped skips both.
    assert train.trigger_rule == "none_failed_min_one_success"
    assert train.upstream_task_ids == {"check_drift", "tune"}
    assert tune.environment["TUNE_ENABLED"] == (
        "{{ '' if params.get('tune') is none else params.get('tune') }}")


def test_every_task_notifies_when_it_fails_and_the_gate_when_it_stops(dag) -> None:
    for task in dag.tasks:
        notifiers = task.on_failure_callback
        assert len(notifiers) == 1 and isinstance(notifiers[0], HttpNotifier), task.task_id
        assert notifiers[0].http_conn_id == "ct_notify"
        assert notifiers[0].json["reason"] == "{{ exception }}"
    stop = dag.get_task("stop_pipeline").on_success_callback
    assert len(stop) == 1 and isinstance(stop[0], HttpNotifier)
    assert "quality_gate" in stop[0].json["reason"]
    assert {"dag_id", "run_id", "task_id", "reason", "url", "text"} <= set(stop[0].json)
    kept = dag.get_task("keep_production").on_success_callback
    assert len(kept) == 1 and kept[0].json["outcome"] == "rejected"
    assert "keep_production" in kept[0].json["reason"]


def test_batch_scoring_runs_when_a_table_to_score_is_published(dagbag) -> None:
    scoring = dagbag.dags["batch_scoring"]
    assert "s3://dvc-data/published/breast_cancer_to_score.json" in repr(scoring.timetable.asset_condition)
    [task] = scoring.tasks
    assert isinstance(task, StepOperator) and task.image == "ct-predict:latest"
    assert task.command == ("--input '{{ params.input or '' | string | replace(\"'\", '') }}' --output "
                            f"s3://pipeline-runs/predictions/{RUN_ID_PATH}")
    assert scoring.params["input"] is None
    assert scoring.max_active_runs == 1 and scoring.catchup is False


def test_monitoring_runs_every_hour_in_a_container_of_the_drift_image_then_publishes_what_it_hands_on(
        dagbag) -> None:
    monitor = dagbag.dags["monitor_production"]
    measure, publish = monitor.get_task("monitor_production"), monitor.get_task("publish_data")
    assert isinstance(measure, StepOperator) and measure.image == "ct-monitor-production:latest"
    assert measure.command == f"--output s3://pipeline-runs/monitoring/{RUN_ID_PATH}"
    assert measure.downstream_task_ids == {"publish_data"} and len(monitor.tasks) == 2
    # The labelled rows the monitor found, when decay set it off; its success starts training.
    assert isinstance(publish, StepOperator) and publish.image == "ct-publish-data:latest"
    assert publish.command == f"--append-labelled s3://pipeline-runs/monitoring/{RUN_ID_PATH}"
    assert publish.outlets == [stack_config.DATA_ASSET]
    assert stack_config.DATA_ASSET in dagbag.dags["ml_training_pipeline"].timetable.asset_condition.objects
    assert monitor.schedule == "@hourly"
    assert monitor.max_active_runs == 1 and monitor.catchup is False


def test_monitoring_can_be_left_to_run_only_on_demand(monkeypatch) -> None:
    with_settings(monkeypatch, ct_monitor_schedule="none")
    assert DagBag(dag_folder=str(DAGS_FOLDER / "monitor_production.py")).dags["monitor_production"].schedule \
        is None


def test_only_the_publishing_task_gets_the_publishers_s3_keys(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pipeline-key")
    monkeypatch.setenv("S3_PUBLISHER_ACCESS_KEY", "publisher-key")
    monkeypatch.setenv("S3_PUBLISHER_SECRET_KEY", "publisher-secret")
    assert stack_config.secret_environment(pipeline.step("monitor_production"))["AWS_ACCESS_KEY_ID"] == \
        "pipeline-key"
    keys = stack_config.secret_environment(pipeline.step("publish_data"))
    assert (keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"]) == ("publisher-key", "publisher-secret")
    monkeypatch.delenv("S3_PUBLISHER_SECRET_KEY")
    with pytest.raises(AirflowFailException, match="publish_data signs with the S3 identity PUBLISHER, but "
                       "this Airflow service has no S3_PUBLISHER_SECRET_KEY"):
        stack_config.secret_environment(pipeline.step("publish_data"))


def rendered(notifier: HttpNotifier, context: dict) -> dict:
    """The JSON a notifier would POST in this context."""
    notifier.render_template_fields(context)
    return notifier.json


class FakeTaskInstance:  # pylint: disable=too-few-public-methods
    """What a callback asks of the task instance: its result, its name, its try and its page."""

    task_id, try_number, log_url = "monitor_production", 1, "http://localhost:8080/the-task"

    def __init__(self, result: dict) -> None:
        self.result = result

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> dict | None:
        return self.result if (task_ids, key) == ("monitor_production", "return_value") else None


def test_a_monitor_run_that_sets_off_a_trigger_notifies_its_reasons_and_a_quiet_one_sends_nothing(
        dagbag) -> None:
    [callback] = dagbag.dags["monitor_production"].get_task("monitor_production").on_success_callback
    sent = []
    callback.notifier.notify = lambda context: sent.append(callback.notifier.json)
    triggers = [{"kind": "drift", "reason": "3 of 30 columns drifted, more than MONITOR_MAX_DRIFT_SHARE"},
                {"kind": "decay", "reason": "live f1 0.1000 on 40 labelled rows < 0.8500"}]
    ti = FakeTaskInstance({"triggers": triggers})
    context = {"ti": ti, "task_instance": ti, "dag": dagbag.dags["monitor_production"], "run_id": "manual__1"}
    callback(context | {"ti": FakeTaskInstance({"triggers": []})})
    assert not sent
    callback(context)
    assert len(sent) == 1
    message = sent[0]
    assert message["outcome"] == "triggered"
    assert message["reason"] == "; ".join(trigger["reason"] for trigger in triggers)
    assert message["text"] == ("monitor_production run manual__1: the Production model's monitoring set "
                               f"off: {message['reason']} (http://localhost:8080/the-task)")


def test_an_approval_still_waiting_near_its_timeout_is_reminded(dagbag) -> None:
    [_, reminder] = dagbag.dags["ml_training_pipeline"].deadline
    assert reminder.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert reminder.interval == timedelta(hours=24) - timedelta(minutes=60)
    run = {"dag_id": "ml_training_pipeline", "dag_run_id": "manual__1", "state": "running"}
    notifier = HttpNotifier(**reminder.callback.kwargs, context={"dag_run": run, "deadline": {}})
    message = rendered(notifier, notifier.context)
    assert message["outcome"] == "approval_due"
    assert message["reason"] == ("still going 1380 min after it was queued: a promotion waiting for approval "
                                 "counts as Reject 24 h after it was asked (CT_APPROVAL_TIMEOUT_HOURS); "
                                 "approve or reject it on the run's page")


def test_no_reminder_where_promotion_never_waits_for_a_person(monkeypatch) -> None:
    with_settings(monkeypatch, ct_auto_approve=True)
    assert notify.approval_reminder() is None


def test_drift_informs_unless_the_run_sets_a_maximum(dag) -> None:
    assert dag.get_task("check_drift").environment["MAX_DRIFT_SHARE"] == (
        "{{ '' if params.get('max_drift_share') is none else params.get('max_drift_share') }}")
    assert "--drift s3://pipeline-runs/runs/" in dag.get_task("evaluate").command


def with_settings(monkeypatch, **changes) -> None:
    """The stack's settings with these changed, as the DAG files read them."""
    monkeypatch.setattr(stack_config, "SETTINGS", dataclasses.replace(stack_config.SETTINGS, **changes))


def test_every_task_goes_to_the_default_queue_unless_a_heavy_queue_is_set(dag, monkeypatch) -> None:
    assert {task.queue for task in dag.tasks} == {"default"}
    with_settings(monkeypatch, ct_heavy_queue="heavy")
    queues = {step: StepOperator(step=pipeline.step(step)).queue
              for step in ("prepare", "tune", "train", "evaluate", "register", "predict")}
    assert queues == {"prepare": "default", "tune": "heavy", "train": "heavy", "evaluate": "heavy",
                      "register": "default", "predict": "heavy"}


def test_step_containers_get_extra_hosts_only_on_a_worker_away_from_the_stack(dag, monkeypatch) -> None:
    assert {task.extra_hosts for task in dag.tasks if isinstance(task, DockerOperator)} == {None}
    monkeypatch.setattr(stack_config, "STEP_EXTRA_HOSTS",
                        stack_config.host_entries("s3:10.0.0.5,mlflow:fd00::5"))
    assert StepOperator(step=pipeline.step("train")).extra_hosts == {"s3": "10.0.0.5", "mlflow": "fd00::5"}


def test_an_extra_host_without_an_address_is_refused_by_name() -> None:
    assert stack_config.host_entries(" ") is None
    with pytest.raises(ValueError, match="CT_STEP_EXTRA_HOSTS: 's3' is not name:address"):
        stack_config.host_entries("mlflow:10.0.0.5,s3")


def test_runs_at_once_are_a_setting_for_a_scale_out_stack(monkeypatch) -> None:
    with_settings(monkeypatch, ct_max_active_runs=3)
    assert dag_defaults.dag_arguments()["max_active_runs"] == 3


@pytest.mark.parametrize(("dag_id", "minutes", "setting"), [
    ("ml_training_pipeline", 120, "CT_RUN_DEADLINE_MINUTES"),
    ("monitor_production", 30, "CT_MONITOR_DEADLINE_MINUTES"),
])
def test_a_run_not_finished_by_its_deadline_notifies_with_its_link_while_it_still_runs(
        dagbag, dag_id: str, minutes: int, setting: str) -> None:
    alert = dagbag.dags[dag_id].deadline
    alert = alert[0] if isinstance(alert, list) else alert
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=minutes)
    # The triggerer makes the notifier with the run as its context and renders it, as here.
    run = {"dag_id": dag_id, "dag_run_id": "manual__2026-01-01T00:00:00+00:00", "state": "running"}
    notifier = HttpNotifier(**alert.callback.kwargs, context={"dag_run": run, "deadline": {}})
    notifier.render_template_fields(notifier.context)
    assert notifier.http_conn_id == "ct_notify" and notifier.json["outcome"] == "late"
    assert notifier.json["text"] == (
        f"{dag_id} run manual__2026-01-01T00:00:00+00:00: not finished {minutes} min after it was "
        f"queued ({setting}); it is running (http://localhost:8080/dags/{dag_id}/runs/"
        "manual__2026-01-01T00%3A00%3A00%2B00%3A00)")
