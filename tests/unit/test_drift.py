"""Data drift: Evidently's per-column tests read into one summary, and the summary joins the run.

Evidently itself runs only in the check-drift image (it needs pandas<3; the image
tests run it for real). Here: reading its report, the step picking the Staging model's data
version as reference and stopping only above max_drift_share, and evaluate taking
check_drift's record into the MLflow run on real S3 and MLflow.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline_steps.steps import check_drift
from pipeline_steps.data import drift
from pipeline_steps.steps import evaluate
from pipeline_steps.steps import prepare
from pipeline_steps.steps import publish_data
from pipeline_steps.services import tracking
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.data.schema import TableSchema
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
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


def test_the_summary_names_the_drifted_columns_and_their_share() -> None:
    summary = drift.summarise(REPORT)
    assert summary == drift.DriftSummary(4, 2, 0.5, ("mean radius", "island"))
    assert summary.line() == "2 of 4 columns drifted (50%): mean radius, island"
    assert drift.summarise({"metrics": REPORT["metrics"][2:3]}).line() == "no column drifted (0 of 1)"


def test_the_label_is_not_counted_among_the_feature_columns_but_its_drift_is_said() -> None:
    with_label = {"metrics": [*REPORT["metrics"], value_drift("target", "Z-test p_value", 0.05, 1e-6)]}
    summary = drift.summarise(with_label, target="target")
    assert (summary.columns, summary.drifted, summary.share) == (4, 2, 0.5)
    assert summary.line() == ("2 of 4 columns drifted (50%): mean radius, island; the label's distribution "
                              "drifted too")
    steady = {"metrics": [*REPORT["metrics"][2:3], value_drift("target", "Z-test p_value", 0.05, 0.9)]}
    assert drift.summarise(steady, target="target").line() == "no column drifted (0 of 1)"


def test_evaluate_logs_the_drift_summary_and_report_to_the_run(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    published = publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")
    run = run_steps(settings, store, run_prefix, data_version=published["md5"], do_register=False)
    line = "data drift since the Staging model's data: 2 of 4 columns drifted (50%): mean radius, island"
    store.write_bytes(f"{run_prefix}/drift/drift_report.html", b"<html>report</html>")
    store.write_json(f"{run_prefix}/drift/result.json", {
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


def shifted(table: bytes, column: str) -> bytes:
    """The same table with one column moved far from where it was."""
    frame = pd.read_csv(io.BytesIO(table))
    frame[column] = frame[column] * 10
    return frame.to_csv(index=False).encode()


def test_check_drift_compares_with_the_staging_models_data_and_stops_only_above_the_maximum(
    settings: Settings, store: Storage, run_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = builtin_csv("breast_cancer")
    staged = publish_data.publish(settings, store, first, "breast_cancer.csv")
    run_steps(settings, store, f"{run_prefix}/first", data_version=staged["md5"])
    newer = publish_data.publish(settings, store, shifted(first, "mean_radius"), "breast_cancer.csv")
    prepared = prepare.prepare(settings, store, f"{run_prefix}/prepare", data_version=newer["md5"])
    prepared_schema = TableSchema.from_dict(store.read_json(f"{run_prefix}/prepare/result.json")["schema"])

    compared: list[tuple[pd.DataFrame, pd.DataFrame]] = []

    def measure(reference: pd.DataFrame, current: pd.DataFrame,
                schema: TableSchema) -> tuple[drift.DriftSummary, bytes]:
        # Evidently itself runs in the check-drift image (tests/images); here, what it is given.
        compared.append((reference, current))
        assert schema.feature_names == prepared_schema.feature_names
        return drift.DriftSummary(30, 1, 1 / 30, ("mean_radius",)), b"<html>report</html>"

    monkeypatch.setattr(drift, "measure", measure)
    informs = check_drift.check_drift(settings, store, prepared["prepared_uri"], f"{run_prefix}/drift")
    reference, current = compared[0]
    assert reference["mean_radius"].max() * 10 == pytest.approx(current["mean_radius"].max())
    assert len(reference) == 569 and len(current) == prepared["rows_train"] + prepared["rows_test"]
    assert informs["reference_version"] == staged["md5"]
    assert informs["drift_line"] == ("data drift since the Staging model's data: "
                                     "1 of 30 columns drifted (3%): mean_radius")
    assert "skip_reason" not in informs
    assert store.read_bytes(informs["report_uri"]) == b"<html>report</html>"

    stops = check_drift.check_drift(dataclasses.replace(settings, max_drift_share=0.02), store,
                                    prepared["prepared_uri"], f"{run_prefix}/drift")
    assert stops["skip_reason"] == (f"{informs['drift_line']}, more than max_drift_share 2%: "
                                    "nothing trained or registered")
    kept = check_drift.check_drift(dataclasses.replace(settings, max_drift_share=0.05), store,
                                   prepared["prepared_uri"], f"{run_prefix}/drift")
    assert "skip_reason" not in kept


def test_check_drift_says_why_it_measured_nothing(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    published = publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")
    prepared = prepare.prepare(settings, store, f"{run_prefix}/prepare", data_version=published["md5"])
    settings = dataclasses.replace(settings, max_drift_share=0.0)
    first = check_drift.check_drift(settings, store, prepared["prepared_uri"], f"{run_prefix}/drift")
    assert first["drift_line"] == "data drift not measured: no Staging model to compare with"
    assert "skip_reason" not in first
    run_steps(settings, store, f"{run_prefix}/first", data_version=published["md5"])
    same = check_drift.check_drift(settings, store, prepared["prepared_uri"], f"{run_prefix}/drift")
    assert same["drift_line"] == ("data drift not measured: "
                                  "the Staging model was trained on this same data version")
