"""ml_training_pipeline: continuous training of an XGBoost model, one container per step, and its promotion.

This file only wires tasks together: it holds no ML code and imports nothing
heavy, because the dag-processor parses it every few seconds. Its steps, their
command lines and the graph come from the pipeline's declaration
(pipeline_steps/pipeline.py), and its Params from the settings'
(pipeline_steps/settings.py). Each step runs its own image (tagged with the commit
the stack was deployed from) on the stack's network and hands the next step a
small JSON result, read from the container's stdout alone (ct_tasks/step_tasks.py
says why); every byte of data goes through S3 under a run-scoped prefix.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from ct_tasks import dag_defaults, gate_branch, notify, promotion, run_params, stack_config, step_tasks
from pipeline_steps import pipeline
from pipeline_steps.pipeline import APPROVAL_TASK, GATE_TASK, KEEP_TASK, STOP_TASK, TRAINING_DAG

SETTINGS = stack_config.SETTINGS
# Published by the publish_data step (make publish, or the monitor's DAG), with an event on it: that
# starts a run.
DATA_ASSET = stack_config.DATA_ASSET
STEPS_DOC = "\n".join(f"- `{step.name}`: {step.doc}" for step in pipeline.of_dag(TRAINING_DAG))

with DAG(
    dag_id=TRAINING_DAG,
    description="Train, evaluate, register an XGBoost model if good enough, and promote it once approved",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("@daily", timezone="UTC"), assets=[DATA_ASSET]
    ),
    **dag_defaults.dag_arguments(
        notify.run_deadline(SETTINGS.ct_run_deadline_minutes, "CT_RUN_DEADLINE_MINUTES"),
        notify.approval_reminder()),
    params={
        **run_params.from_settings(),
        "force": Param(False, type="boolean",
                       description="train even when no new data version is published"),
        "wait_for_data_minutes": Param(
            None, type=["null", "integer"], minimum=0,
            description="wait this long for a new data version before skipping; empty: "
                        "scheduled runs wait CT_SCHEDULED_WAIT_MINUTES, other runs answer at once",
        ),
    },
    doc_md=__doc__ + f"""
### Steps
{STEPS_DOC}

The first check answers at once: a data version newer than the Staging model's (or `force`)
lets the run go on, otherwise the run is skipped, unless `wait_for_data_minutes` asks it to
wait (one check per CT_WAIT_POKE_SECONDS). The optional step runs only when its Param asks.
Evaluate scores the new model and the Staging model on the same unseen test rows and makes
the gate's decision, with this run's `threshold`, `metric` and `tolerance`, by the same code
as the local pipeline's; `{GATE_TASK}` follows it:
- passed → register (a new version with the `staging` alias and its provenance tags) →
  `{APPROVAL_TASK}`: a person approves or rejects in **Browse → Required actions** (or the REST
  API), seeing the candidate's metrics next to Staging's and Production's; `auto_approve` skips
  the question. Approve → promote: the `production` alias moves to the new version; Reject, or
  no answer in time → `{KEEP_TASK}`: Production unchanged, notified;
- stopped → `{STOP_TASK}`, which says why (task log, MLflow run tag `gate.reason`, and the
  webhook CT_NOTIFY_WEBHOOK).

Any task that fails for good also notifies the webhook. Steps retry only failures a retry
can fix (exit code 3 means it cannot). Runs whenever a new data version is published
(Asset `{DATA_ASSET.uri}`) and daily as a safety net.
Outputs of a run: `s3://{SETTINGS.s3_runs_bucket}/runs/<run_id>/<step>/`.
""",
) as dag:
    tasks = step_tasks.for_dag(TRAINING_DAG)
    tasks[GATE_TASK] = BranchPythonOperator(task_id=GATE_TASK, python_callable=gate_branch.choose_branch)
    tasks[STOP_TASK] = PythonOperator(task_id=STOP_TASK, python_callable=gate_branch.report_stop,
                                      on_success_callback=notify.on_gate_stop())
    tasks[APPROVAL_TASK] = promotion.PromotionApproval(task_id=APPROVAL_TASK)
    tasks[KEEP_TASK] = PythonOperator(task_id=KEEP_TASK, python_callable=promotion.report_kept,
                                      on_success_callback=notify.on_promotion_kept())
    step_tasks.wire(TRAINING_DAG, tasks)
    for (upstream, downstream), label in {(GATE_TASK, gate_branch.REGISTER_TASK): "passed",
                                          (GATE_TASK, STOP_TASK): "stopped",
                                          (APPROVAL_TASK, promotion.PROMOTE_TASK): promotion.APPROVE,
                                          (APPROVAL_TASK, KEEP_TASK): promotion.REJECT}.items():
        dag.set_edge_info(upstream, downstream, {"label": label})
