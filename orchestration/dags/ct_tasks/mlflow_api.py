"""The one MLflow call Airflow itself makes: tagging a run with what the quality gate decided.

Airflow's images do not carry MLflow's client (the steps do), and a tag is one
REST call, so the standard library does it. The tracking URI and the login are
the stack's (`MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_USERNAME` and
`MLFLOW_TRACKING_PASSWORD`, set on every Airflow service), as MLflow's own client
reads them.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request

TIMEOUT_SECONDS = 30
TAG_GATE_DECISION = "gate.decision"
TAG_GATE_REASON = "gate.reason"


def headers() -> dict[str, str]:
    """JSON, and basic auth when a login is set (the stack's MLflow refuses requests without one)."""
    sent = {"Content-Type": "application/json"}
    username = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if username and password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
    return sent


def set_run_tags(run_id: str, tags: dict[str, str]) -> None:
    """Set tags on an MLflow run; an HTTP or network error fails the calling task (it may retry)."""
    base = os.environ.get("MLFLOW_TRACKING_URI", "http://mlflow:5000").rstrip("/")
    for key, value in tags.items():
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/set-tag",
            data=json.dumps({"run_id": run_id, "key": key, "value": value}).encode(),
            headers=headers(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # nosec B310: the stack's own URL
            pass
