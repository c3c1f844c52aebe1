"""The DAG as specified: it parses, its tasks and edges, its operators, its images."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import AssetOrTimeSchedule

EDGES = {
    "check_for_new_data": {"prepare_data"},
    "prepare_data": {"train_model"},
    "train_model": {"evaluate_model"},
    "evaluate_model": {"quality_gate"},
    "quality_gate": {"register_model", "stop_pipeline"},
    "register_model": set(),
    "stop_pipeline": {"notify"},
    "notify": set(),
}
STEP_IMAGES = {
    "prepare_data": "ct-prepare:latest",
    "train_model": "ct-train:latest",
    "evaluate_model": "ct-evaluate:latest",
    "register_model": "ct-register:latest",
}


def test_the_dag_folder_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert "ml_training_pipeline" in dagbag.dags


def test_a_broken_dag_file_is_reported_as_an_import_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken_dag.py"
    broken.write_text("from airflow.sdk import DAG\nwith DAG(dag_id='broken') as dag:\n    undefined_name\n")
    errors = DagBag(dag_folder=str(tmp_path)).import_errors
    assert list(errors) == [str(broken)]
    assert "NameError" in errors[str(broken)]


def test_tasks_and_edges_are_as_specified(dag) -> None:
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == EDGES


def test_each_task_has_its_operator_type(dag) -> None:
    assert isinstance(dag.get_task("check_for_new_data"), PythonSensor)
    assert isinstance(dag.get_task("quality_gate"), BranchPythonOperator)
    assert isinstance(dag.get_task("stop_pipeline"), EmptyOperator)
    assert isinstance(dag.get_task("notify"), PythonOperator)
    for task_id, image in STEP_IMAGES.items():
        task = dag.get_task(task_id)
        assert isinstance(task, DockerOperator), task_id
        assert task.image == image


def test_step_containers_are_safe_to_retry_and_to_kill(dag) -> None:
    for task_id in STEP_IMAGES:
        task = dag.get_task(task_id)
        assert task.mount_tmp_dir is False
        assert task.auto_remove == "force"
        assert task.network_mode == "mlops"
        assert task.retries >= 1 and task.retry_exponential_backoff
        assert task.execution_timeout == timedelta(minutes=30)
        assert "AWS_SECRET_ACCESS_KEY" not in task.environment
        assert "--output s3://pipeline-runs/runs/{{ dag_run.run_id" in task.command


def test_the_sensor_waits_in_reschedule_mode_and_skips_at_its_timeout(dag) -> None:
    sensor = dag.get_task("check_for_new_data")
    assert sensor.mode == "reschedule"
    assert sensor.soft_fail is True
    assert (sensor.poke_interval, sensor.timeout) == (60, 600)


def test_runs_daily_and_on_new_data_one_at_a_time(dag) -> None:
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert "s3://dvc-data/published/breast_cancer.json" in repr(dag.timetable.asset_condition)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "quality_gate" in dag.doc_md
    assert dag.params["threshold"] == 0.85
    assert dag.params["metric"] == "f1"
    assert dag.params["force"] is False
