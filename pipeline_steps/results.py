"""Each step's result, typed once: what it prints (Airflow's XCom) and what the next one reads.

The step that writes a result, the DAG code and the host client that read it, and the
tests all use these types. A result with ``skip_reason`` means the step found nothing to
do (the task is skipped, the reason said). Standard library only: the DAGs import it.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Skipped(TypedDict, total=False):
    """Any step's result when it did nothing: why."""

    step: str
    skip_reason: str


class CheckDataResult(TypedDict):
    """check_data: is a data version newer than the Staging model's?"""

    step: str
    dataset: str
    latest_version: str | None
    published_at: str | None
    staging_version: str | None
    staging_model_version: str | None
    new_data: bool


class Rows(TypedDict):
    """What a table had and lost before the split (pipeline_steps/data/rows.py)."""

    raw: int
    kept: int
    dropped: dict[str, int]
    coerced: dict[str, int]


class PrepareResult(TypedDict):
    """prepare: where the split is and how many rows each side has."""

    data_version: str
    prepared_uri: str
    rows_train: int
    rows_test: int
    rows: Rows
    dropped_columns: dict[str, str]


class CheckDriftResult(TypedDict, total=False):
    """The drift check: the drift summary, its line, and the report (``skip_reason`` above the maximum)."""

    step: str
    data_version: str
    drift: dict[str, Any] | None
    drift_line: str
    report_uri: str
    reference_version: str
    skip_reason: str


class TrainResult(TypedDict):
    """train: the MLflow run and where the model is."""

    step: str
    run_id: str
    experiment_id: str
    data_version: str
    seed: int
    xgb_params: dict[str, Any]
    tune_run_id: str | None
    model_uri: str
    trained_uri: str
    prepared_uri: str


class GateDecision(TypedDict):
    """The quality gate's decision, with the settings it used (pipeline_steps/modelling/gate.py)."""

    decision: str
    passed: bool
    reason: str
    metric: str
    threshold: float
    tolerance: float


class EvaluateResult(TypedDict, total=False):
    """evaluate: both models' numbers on the same rows, and the gate's decision."""

    step: str
    run_id: str
    data_version: str
    metrics: dict[str, float]
    metric: str
    value: float
    positive_class: Any
    champion: dict[str, Any] | None
    rows: Rows | None
    schema_changes: list[str]
    drift_line: str | None
    metrics_uri: str
    report_uri: str
    plot_uri: str
    comparison_uri: str | None
    evaluated_uri: str
    gate: GateDecision


class VersionSummary(TypedDict, total=False):
    """A registered version, as a person compares it."""

    version: str
    run_id: str | None
    experiment_id: str | None
    data_version: str | None
    metrics: dict[str, float]


class RegisterResult(TypedDict, total=False):
    """register: the new Staging version (or why none was registered)."""

    step: str
    registered: bool
    model_name: str
    version: str
    alias: str
    run_id: str
    data_version: str | None
    experiment_id: str
    metric: str
    value: float
    reason: str
    metrics: dict[str, float]
    champion: dict[str, Any] | None
    production: VersionSummary | None
    skip_reason: str


class ProductionMove(TypedDict, total=False):
    """promote and rollback: which version serves Production now, and which it replaced."""

    step: str
    model_name: str
    alias: str
    version: str
    previous_version: str | None
    message: str
    skip_reason: str


class MonitorResult(TypedDict, total=False):
    """monitor_production: what a window of the prediction log showed, and what it set off."""

    step: str
    model_name: str
    model_version: str
    data_version: str | None
    window_start: str | None
    window_end: str
    rows: int
    labelled_rows: int
    unmatched_labels: int
    drift: dict[str, Any] | None
    drift_line: str
    class_shares: dict[str, float]
    live_metrics: dict[str, float]
    triggers: list[dict[str, str]]  # kind (drift, decay) and reason
    labelled_uri: str  # with a decay trigger: the labelled rows, as training rows
    run_id: str
    message: str
    skip_reason: str


class PredictResult(TypedDict, total=False):
    """predict: what was scored, with which model, and where the predictions are."""

    step: str
    model_name: str
    model_version: str
    model_run_id: str
    data_version: str
    input: str
    rows: int
    scored_rows: int
    classes: list[Any]
    image: str | None
    scored_at: str
    predictions_uri: str
    prediction_log: dict[str, Any]  # request_id, and the log's files it wrote
    message: str
    skip_reason: str
