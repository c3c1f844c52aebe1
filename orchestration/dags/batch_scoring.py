"""batch_scoring: score a table with the Production model; predictions as Parquet on S3.

Runs when a table to score is published (`make score FILE=...`, an event on the
Asset below) or by hand, where the `input` Param may name any `s3://` file
instead. One step container (`predict`) loads `models:/<name>@production`,
whatever promotion or rollback left there, and writes
`s3://<runs bucket>/predictions/<run_id>/predictions.parquet` (the table's
columns, `prediction` in the user's labels, `probability.<class>`) and
`predictions.json` (model version and run, data version, input, image). With
no Production model yet, or nothing to score, the task is skipped with one line
saying so.
"""

from __future__ import annotations

from airflow.sdk import DAG, Asset, Param

from ct_tasks import dag_defaults, stack_config, step_tasks
from pipeline_steps.pipeline import SCORING_DAG

SETTINGS = stack_config.SETTINGS
# Published by `publish_data --to-score`, which posts an event on it: that starts a run.
SCORING_ASSET = Asset(name=f"{SETTINGS.scoring_dataset_name}_data", uri=SETTINGS.scoring_pointer_uri)

with DAG(
    dag_id=SCORING_DAG,
    description="Score a table with the Production model; predictions as Parquet on S3",
    schedule=[SCORING_ASSET],
    params={
        "input": Param(None, type=["null", "string"], pattern="^s3://",
                       description="an s3:// CSV or Parquet file to score instead of the newest "
                                   "table published to score"),
    },
    doc_md=__doc__,
    **dag_defaults.dag_arguments(),
) as dag:
    step_tasks.wire(SCORING_DAG, step_tasks.for_dag(SCORING_DAG))
