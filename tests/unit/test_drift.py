"""Data drift: Evidently's per-column tests read into one summary, and the summary joins the run.

Evidently itself runs only in the check-drift image (it needs pandas<3; the image
tests run it for real). Here: reading its report, and evaluate taking
check_drift's record into the MLflow run on real S3 and MLflow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pipeline_steps import drift, evaluate, publish_data, tracking
from pipeline_steps.datasets import builtin_csv
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage
from tests.unit.pipeline_run import run_steps


def value_drift(column: str, method: str, threshold: float, value: float) -> dict:
    return {"metric_name": f"ValueDrift(column={column},method={method},threshold={threshold})",
            "value": value}


REPORT = {"metrics": [
    {"metric_name": "DriftedColumnsCount(drift_share=0.5)", "value": {"count": 2.0, "share": 0.5}},
    value_drift("mean radius", "K-S p_value", 0.05, 1e-9),
    value_drift("mean texture", "K-S p_value", 0.05, 0.47),
    value_drift("island", "Jensen-Shannon distance", 0.1, 0.3),
    value_drift("sex", "Jensen-Shannon distance", 0.1, 0.02),
]}


def test_a_p_value_drifts_below_its_threshold_and_a_distance_at_or_above_it() -> None:
    assert drift.column_drifted("K-S p_value", 0.01, 0.05)
    assert not drift.column_drifted("K-S p_value", 0.05, 0.05)
    assert drift.column_drifted("Wasserstein distance (normed)", 0.1, 0.1)
    assert not drift.column_drifted("Wasserstein distance (normed)", 0.09, 0.1)


def test_the_summary_names_the_drifted_columns_and_keeps_evidently_s_share() -> None:
    summary = drift.summarise(REPORT)
    assert summary == drift.DriftSummary(4, 2, 0.5, ("mean radius", "island"))
    assert summary.line() == "2 of 4 columns drifted (50%): mean radius, island"
    assert drift.summarise({"metrics": REPORT["metrics"][2:3]}).line() == "no column drifted (0 of 1)"


def test_evaluate_logs_the_drift_summary_and_report_to_the_run(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    published = publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")
    run = run_steps(settings, store, run_prefix, data_version=published["md5"], do_register=False)
    line = "data drift since the Staging model's data: 2 of 4 columns drifted (50%): mean radius, island"
    store.write_bytes(f"{run_prefix}/drift/drift_report.html", b"<html>report</html>")
    store.write_json(f"{run_prefix}/drift/check_drift.json", {
        "step": "check_drift", "drift": drift.summarise(REPORT).to_dict(), "drift_line": line,
        "report_uri": f"{run_prefix}/drift/drift_report.html"})
    evaluated = evaluate.evaluate(settings, store, run.trained["trained_uri"], f"{run_prefix}/again",
                                  drift_uri=f"{run_prefix}/drift")
    assert evaluated["drift_line"] == line
    client = tracking.connect(settings)
    logged = client.get_run(run.trained["run_id"]).data
    assert logged.metrics["drift.share"] == pytest.approx(0.5)
    assert logged.tags["drift.summary"] == line
    assert logged.tags["drift.columns"] == "mean radius, island"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(client.download_artifacts(run.trained["run_id"], "drift_report.html", tmp))
        assert report.read_bytes() == b"<html>report</html>"
