"""The one MLflow call Airflow itself makes: tagging a run with what the quality gate decided.

Airflow's images do not carry MLflow's client (the steps do), and a tag is one
REST call, so the standard library does it. The tracking URI is the stack's
(`MLFLOW_TRACKING_URI`, set on every Airflow service).
"""

from __future__ import annotations

import json
import os
import urllib.request

TIMEOUT_SECONDS = 30
TAG_GATE_DECISION = "gate.decision"
TAG_GATE_REASON = "gate.reason"


def set_run_tags(run_id: str, tags: dict[str, str]) -> None:
    """Set tags on an MLflow run; an HTTP or network error fails the calling task (it may retry)."""
    base = os.environ.get("MLFLOW_TRACKING_URI", "http://mlflow:5000").rstrip("/")
    for key, value in tags.items():
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/set-tag",
            data=json.dumps({"run_id": run_id, "key": key, "value": value}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # nosec B310: the stack's own URL
            pass
