"""monitor_production: what the Production model sees and how right it is, every hour.

One step container (`monitor_production`, in the drift image: Evidently) reads the
prediction log (the model server's answers and batch scoring's rows) and the
labels sent back (`make feedback`) written since the last run, compares the inputs
with the data version the Production model was trained on, counts each predicted
class and computes the gate's metric on the labelled rows. Each window is an MLflow
run of the experiment `<model>-monitoring`, with the Evidently report as an
artifact; the task's result says what it read, measured and set off in one line.
A window with nothing new, or too few rows, is skipped with a line saying so.
Also started by hand (`make monitor`, the UI's Trigger button or the REST API).
"""

from __future__ import annotations

from airflow.sdk import DAG

from ct_tasks import dag_defaults, notify, stack_config, step_tasks
from pipeline_steps.pipeline import MONITOR_DAG

with DAG(
    dag_id=MONITOR_DAG,
    description="Monitor the Production model on the prediction log: drift, classes, live metric",
    schedule="@hourly",
    **dag_defaults.dag_arguments(deadline=notify.run_deadline(
        stack_config.SETTINGS.ct_monitor_deadline_minutes, "CT_MONITOR_DEADLINE_MINUTES")),
    doc_md=__doc__,
) as dag:
    step_tasks.wire(MONITOR_DAG, step_tasks.for_dag(MONITOR_DAG))
