"""ml_training_pipeline: continuous training of an XGBoost model, one container per step, and its promotion.

This file only wires tasks together: it holds no ML code and imports nothing
heavy, because the dag-processor parses it every few seconds. Each step runs its
own image (tagged with the commit the stack was deployed from) on the stack's
network and hands the next step a small JSON result, read from the container's
stdout alone (ct_tasks/steps.py says why); every byte of data goes through S3
under a run-scoped prefix.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import (DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Label, Param, TriggerRule,
                         chain)

from ct_tasks import dag_defaults, deployment, gate, notify, promotion
from ct_tasks.steps import NewDataSensor, StepOperator

DAG_ID = "ml_training_pipeline"
# pipeline_steps.settings.GATE_METRICS (a unit test checks they agree).
GATE_METRICS = ["f1", "f1_macro", "balanced_accuracy", "roc_auc", "accuracy"]

# Published by `pipeline_steps.publish_data`, which also posts an event on it: that starts a run.
DATA_ASSET = Asset(
    name=f"{deployment.DATASET_NAME}_data",
    uri=f"s3://{deployment.DATA_BUCKET}/published/{deployment.DATASET_NAME}.json",
)
DATA_VERSION = "{{ ti.xcom_pull(task_ids='check_for_new_data')['latest_version'] }}"
RUN_PREFIX = f"s3://{deployment.RUNS_BUCKET}/runs/{deployment.RUN_ID_PATH}"


with DAG(
    dag_id=DAG_ID,
    description="Train, evaluate, register an XGBoost model if good enough, and promote it once approved",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("@daily", timezone="UTC"), assets=[DATA_ASSET]
    ),
    **dag_defaults.dag_arguments(),
    params={
        "threshold": Param(deployment.DEFAULT_THRESHOLD, type="number", minimum=0, maximum=1,
                           description="the metric must beat this to register"),
        "tolerance": Param(deployment.DEFAULT_TOLERANCE, type="number", minimum=0, maximum=1,
                           description="how far below the Staging model (scored on the same test rows) "
                                       "the metric may fall and still register"),
        "auto_approve": Param(deployment.AUTO_APPROVE, type="boolean",
                              description="promote a registered model to Production without asking "
                                          "a person (an unattended stack)"),
        "metric": Param(deployment.DEFAULT_METRIC, type="string", enum=GATE_METRICS,
                        description="metric the quality gate compares"),
        "force": Param(False, type="boolean",
                       description="train even when no new data version is published"),
        "wait_for_data_minutes": Param(
            None, type=["null", "integer"], minimum=0,
            description="wait this long for a new data version before skipping; empty: "
                        "scheduled runs wait CT_SCHEDULED_WAIT_MINUTES, other runs answer at once",
        ),
        "max_drift_share": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                 description="stop the run (nothing trained) when more than this share "
                                             "of the columns drifted since the Staging model's data; "
                                             "empty: drift only informs"),
        "tune": Param(deployment.DEFAULT_TUNE, type="boolean",
                      description="tune the XGBoost parameters with Optuna before training (params.yaml's "
                                  "tune: trials and time box; cross-validation on the train split) and "
                                  "train with the best"),
        "xgb_params": Param(deployment.default_xgb_params(), type="object",
                            description="XGBoost parameters (params.yaml's train.xgb, XGB_PARAMS "
                                        "merged over it)"),
    },
    doc_md=__doc__ + f"""
### Flow
`check_for_new_data` runs the check-data step once: a data version newer than the Staging
model's (or `force`) lets the run go on; otherwise the run is skipped at once, unless
`wait_for_data_minutes` asks it to wait (poke mode, one check per CT_WAIT_POKE_SECONDS) →
`prepare_data` → `check_drift` (Evidently's DataDriftPreset against the Staging model's data
version; informs, or stops the run when more than `max_drift_share` of the columns drifted) →
`tune_model` (only with `tune`: an Optuna study, each trial a nested MLflow run; skipped
otherwise) → `train_model` (with the study's best parameters when it ran) → `evaluate_model` (the new model and the current Staging model, loaded from the
registry, scored on the same test rows; the drift report joins the run; the gate's decision is
made there, with this run's `threshold`, `metric` and `tolerance`, by the same code as the
local pipeline's) → `quality_gate` follows it:
- the metric beats `threshold` and is not worse than the Staging model's on those rows by more
  than `tolerance` → `register_model` (new version with the `staging` alias and its
  provenance tags) → `approve_promotion`: a person approves or rejects in **Browse → Required
  actions** (or the REST API), seeing the candidate's metrics next to Staging's and
  Production's; `auto_approve` skips the question;
  - Approve → `promote_model`: the `production` alias moves to the new version;
  - Reject, or no answer in time → `keep_production`: Production unchanged, notified;
- otherwise → `stop_pipeline`, which says why (task log, MLflow run tag `gate.reason`, and the
  webhook CT_NOTIFY_WEBHOOK).

Any task that fails for good also notifies the webhook. Steps retry only failures a retry
can fix (exit code 3 means it cannot). Runs whenever a new data version is published
(Asset `{DATA_ASSET.uri}`) and daily as a safety net.
Outputs of a run: `s3://{deployment.RUNS_BUCKET}/runs/<run_id>/<step>/`.
""",
) as dag:
    check_for_new_data = NewDataSensor(task_id="check_for_new_data")
    prepare_data = StepOperator(
        task_id="prepare_data", step="prepare",
        command=f"--data-version {DATA_VERSION} --output {RUN_PREFIX}/prepare",
    )
    check_drift = StepOperator(
        task_id="check_drift", step="check-drift",
        command=(f"--prepared {RUN_PREFIX}/prepare --output {RUN_PREFIX}/drift "
                 "--max-share '{{ '' if params.max_drift_share is none else params.max_drift_share }}'"),
    )
    tune_model = StepOperator(
        task_id="tune_model", step="tune",
        command=f"--prepared {RUN_PREFIX}/prepare --output {RUN_PREFIX}/tune",
        run_when="{{ params.tune }}", skip_reason="tuning is off (the run's tune Param)",
    )
    train_model = StepOperator(
        task_id="train_model", step="train",
        command=(f"--prepared {RUN_PREFIX}/prepare --output {RUN_PREFIX}/train"
                 f"{{% if params.tune %}} --tuned {RUN_PREFIX}/tune{{% endif %}}"),
        # After check_drift and tune: runs when tune was skipped because it is off, never
        # when check_drift skipped the run (then tune is skipped too and nothing succeeded).
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
    evaluate_model = StepOperator(
        task_id="evaluate_model", step="evaluate",
        command=f"--trained {RUN_PREFIX}/train --drift {RUN_PREFIX}/drift --output {RUN_PREFIX}/evaluate",
    )
    quality_gate = BranchPythonOperator(task_id="quality_gate", python_callable=gate.choose_branch)
    register_model = StepOperator(
        task_id=gate.REGISTER_TASK, step="register",
        command=f"--evaluated {RUN_PREFIX}/evaluate --output {RUN_PREFIX}/register",
    )
    stop_pipeline = PythonOperator(
        task_id=gate.STOP_TASK, python_callable=gate.report_stop,
        on_success_callback=notify.on_gate_stop(),
    )

    approve_promotion = promotion.PromotionApproval(task_id=promotion.APPROVAL_TASK)
    promote_model = StepOperator(
        task_id=promotion.PROMOTE_TASK, step="promote",
        command=(
            f"--version {{{{ ti.xcom_pull(task_ids='{gate.REGISTER_TASK}')['version'] }}}} "
            f"--approved-by '{{{{ ti.xcom_pull(task_ids='{promotion.APPROVAL_TASK}', "
            f"key='{promotion.APPROVED_BY_KEY}') | replace(\"'\", '') }}}}' "
            f"--output {RUN_PREFIX}/promote"
        ),
    )
    keep_production = PythonOperator(
        task_id=promotion.KEEP_TASK, python_callable=promotion.report_kept,
        on_success_callback=notify.on_promotion_kept(),
    )

    chain(check_for_new_data, prepare_data, check_drift, tune_model, train_model, evaluate_model,
          quality_gate)
    check_drift.set_downstream(train_model)
    quality_gate.set_downstream(register_model, edge_modifier=Label("passed"))
    quality_gate.set_downstream(stop_pipeline, edge_modifier=Label("stopped"))
    register_model.set_downstream(approve_promotion)
    approve_promotion.set_downstream(promote_model, edge_modifier=Label(promotion.APPROVE))
    approve_promotion.set_downstream(keep_production, edge_modifier=Label(promotion.REJECT))
