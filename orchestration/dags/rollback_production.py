"""rollback_production: serve the model version approved before the current Production one.

Started by hand (`make rollback`, the UI's Trigger button or the REST API),
never on a schedule. One step container moves the `production` alias back and
marks the version it leaves as rolled back, so a second rollback goes further
back. Batch scoring loads `models:/<name>@production`: its next run uses the
version this leaves. The task's result says which version Production now serves.
"""

from __future__ import annotations

from airflow.sdk import DAG

from ct_tasks import dag_defaults, step_tasks
from pipeline_steps.pipeline import ROLLBACK_DAG

with DAG(
    dag_id=ROLLBACK_DAG,
    description="Move the production alias back to the previously approved model version",
    schedule=None,
    **dag_defaults.dag_arguments(),
    doc_md=__doc__,
) as dag:
    step_tasks.wire(ROLLBACK_DAG, step_tasks.for_dag(ROLLBACK_DAG))
