"""monitor_production: what the Production model sees and how right it is, hourly; retraining when it decays.

One step container (`monitor_production`, in the drift image: Evidently) reads the
prediction log (the model server's answers and batch scoring's rows) and the
labels sent back (`make feedback`) written since the last run, compares the inputs
with the data version the Production model was trained on, counts each predicted
class and computes the gate's metric on the labelled rows. Each window is an MLflow
run of the experiment `<model>-monitoring`, with the Evidently report as an
artifact; the task's result says what it read, measured and set off in one line.
A window with nothing new, or too few rows, is skipped with a line saying so.

Triggers, each a setting with a one-line reason: more than MONITOR_MAX_DRIFT_SHARE of
the columns drifted, or the live metric below MONITOR_MIN_LIVE_METRIC on at least
MONITOR_MIN_LABELLED_ROWS labelled rows. Either notifies (CT_NOTIFY_WEBHOOK). Decay
also hands the window's labelled rows to `publish_data`, which publishes the training
data plus those never appended before (same validation and DVC push as `make
publish`, with the publisher's S3 keys) as a new data version: its success is an event
on the data Asset, which starts `ml_training_pipeline`; the new model still waits for a
person's approval. Fewer than MONITOR_MIN_LABELLED_ROWS new rows publish nothing.

Runs on CT_MONITOR_SCHEDULE (hourly) and by hand (`make monitor`, the UI's Trigger
button or the REST API).
"""

from __future__ import annotations

from airflow.sdk import DAG

from ct_tasks import dag_defaults, notify, stack_config, step_tasks
from pipeline_steps import pipeline
from pipeline_steps.pipeline import MONITOR_DAG

SETTINGS = stack_config.SETTINGS
MONITOR_TASK, PUBLISH_TASK = (step.name for step in pipeline.of_dag(MONITOR_DAG))

with DAG(
    dag_id=MONITOR_DAG,
    description="Monitor the Production model on the prediction log: drift, classes, live metric; "
                "retrain on labelled rows when it decays",
    schedule=None if SETTINGS.ct_monitor_schedule.strip().lower() in ("", "none")
    else SETTINGS.ct_monitor_schedule,
    **dag_defaults.dag_arguments(
        notify.run_deadline(SETTINGS.ct_monitor_deadline_minutes, "CT_MONITOR_DEADLINE_MINUTES")),
    doc_md=__doc__,
) as dag:
    tasks = step_tasks.for_dag(MONITOR_DAG)
    tasks[MONITOR_TASK].on_success_callback = notify.on_monitor_triggers(MONITOR_TASK)
    step_tasks.wire(MONITOR_DAG, tasks)
    dag.set_edge_info(MONITOR_TASK, PUBLISH_TASK, {"label": "decay: labelled rows"})
