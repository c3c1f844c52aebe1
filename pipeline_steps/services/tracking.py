"""MLflow access shared by the steps: connecting, and finding the current Staging model.

Connecting makes one real API call, so an unreachable or misconfigured server
(down, wrong URL, a Host header the server refuses) fails the step at start,
with the URI in the message, instead of after minutes of client retries. A
server that is down or answers 5xx may be back for a retry; one that answers
4xx (403 "Invalid Host header", a URL that is not MLflow) refuses every retry.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from pipeline_steps.services import rest
from pipeline_steps.errors import NotFoundError, PipelineError, ServiceUnreachableError
from pipeline_steps.settings import Settings

STAGING_ALIAS = "staging"
PRODUCTION_ALIAS = "production"
TAG_DATA_VERSION = "data_version"
TAG_SEED = "seed"
TAG_GIT_COMMIT = "git_commit"
TAG_DATASET = "dataset"
# The monitor windows whose labelled rows the data version holds (pipeline_steps/data/versions.py).
TAG_FEEDBACK = "feedback_windows"
IMAGE_TAG_PREFIX = "image."
# What train logs to a run and register versions: the pickle and the xgboost-flavour model.
MODEL_FILE = "model.pkl"
LOGGED_MODEL_NAME = "model"
# The training schema (pipeline_steps.data.schema), logged by train; evaluate compares it with Staging's.
SCHEMA_FILE = "schema.json"
TAG_SCHEMA_WARNINGS = "schema.warnings"
TAG_SCHEMA_CHANGES = "schema.changes"

log = logging.getLogger(__name__)
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def service_error(exc: Any, doing: str) -> PipelineError:
    """The pipeline error for an MlflowException: missing, a server failure (retryable) or else."""
    if exc.error_code in _MISSING_CODES:
        return NotFoundError(f"{doing}: not found ({exc.message})")
    if exc.get_http_status_code() >= 500:
        return ServiceUnreachableError(f"{doing}: MLflow failed ({exc.message})")
    return PipelineError(f"{doing}: {exc.message}")


def connect(settings: Settings) -> Any:
    """Point MLflow at the configured tracking URI and return a client for it."""
    # Imported here: MLflow is the slowest import of every step and `--help` needs none of it.
    import mlflow  # pylint: disable=import-outside-toplevel

    uri = settings.mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        # The login MLflow's client sends too (MLFLOW_TRACKING_USERNAME/PASSWORD): checked here first.
        rest.call_json("MLflow", uri, "GET", "/api/2.0/mlflow/experiments/search?max_results=1",
                       login=settings.mlflow_login)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    log.info("tracking at %s", uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def log_files(client: Any, run_id: str, files: dict[str, bytes]) -> None:
    """Log these very bytes as the run's artifacts, so a file written elsewhere and the run agree."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, payload in files.items():
            Path(tmp, name).write_bytes(payload)
            client.log_artifact(run_id, str(Path(tmp, name)))


def load_run_bytes(client: Any, run_id: str, path: str) -> bytes | None:
    """An artifact of a run, or None when the run has no such file."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    if path not in {a.path for a in client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except MlflowException as exc:
            raise service_error(exc, f"cannot read {path} of MLflow run {run_id!r}") from None
        return Path(local).read_bytes()


def load_run_json(client: Any, run_id: str, path: str) -> Any | None:
    """A JSON artifact of a run, or None when the run has no such file."""
    found = load_run_bytes(client, run_id, path)
    return None if found is None else json.loads(found)


def get_run(client: Any, run_id: str) -> Any:
    """The MLflow run, or a clear error naming the id."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise service_error(exc, f"cannot get MLflow run {run_id!r}") from None


def version_by_alias(client: Any, model_name: str, alias: str) -> Any | None:
    """The model version holding ``alias``, or None when no version holds it (or no model exists)."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in (*_MISSING_CODES, "INVALID_PARAMETER_VALUE"):
            return None
        raise service_error(exc, f"cannot look up {model_name}@{alias} in MLflow") from None


def staging_version(client: Any, model_name: str) -> Any | None:
    """The model version holding the ``staging`` alias, or None when there is none yet."""
    return version_by_alias(client, model_name, STAGING_ALIAS)


def version_summary(client: Any, version: Any) -> dict[str, Any]:
    """A model version's number, run, data version and metrics: what a person compares."""
    run = client.get_run(version.run_id) if version.run_id else None
    tags = {**(run.data.tags if run else {}), **(version.tags or {})}
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "experiment_id": run.info.experiment_id if run else None,
        "data_version": tags.get(TAG_DATA_VERSION),
        "metrics": {k: v for k, v in (run.data.metrics if run else {}).items() if "." not in k},
    }


def staging_summary(client: Any, model_name: str, metric: str) -> dict[str, Any] | None:
    """What the data sensor needs to know about the Staging model."""
    version = staging_version(client, model_name)
    if version is None:
        return None
    summary = version_summary(client, version)
    return {**summary, "metric": metric, "value": summary["metrics"].get(metric)}
