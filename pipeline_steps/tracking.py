"""MLflow access shared by the steps: connecting, and finding the current Staging model.

Connecting makes one real API call, so an unreachable or misconfigured server
(down, wrong URL, a Host header the server refuses) fails the step at start,
with the URI in the message, instead of after minutes of client retries.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import Any

from pipeline_steps.errors import NotFoundError, PipelineError, ServiceUnreachableError
from pipeline_steps.settings import Settings

STAGING_ALIAS = "staging"
TAG_DATA_VERSION = "data_version"
TAG_SEED = "seed"
TAG_GIT_COMMIT = "git_commit"
TAG_DATASET = "dataset"
IMAGE_TAG_PREFIX = "image."
# What train logs to a run and register versions: the pickle and the xgboost-flavour model.
MODEL_FILE = "model.pkl"
LOGGED_MODEL_NAME = "model"

log = logging.getLogger(__name__)


def _probe_server(uri: str) -> None:
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode(errors="replace").strip()
        raise ServiceUnreachableError(
            f"MLflow at {uri} refused the request (HTTP {exc.code}: {body})"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnreachableError(f"MLflow unreachable at {uri}: {reason}") from None


def connect(settings: Settings) -> Any:
    """Point MLflow at the configured tracking URI and return a client for it."""
    # Imported here: MLflow is the slowest import of every step and `--help` needs none of it.
    import mlflow  # pylint: disable=import-outside-toplevel

    uri = settings.mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        _probe_server(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    log.info("tracking at %s", uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def get_run(client: Any, run_id: str) -> Any:
    """The MLflow run, or a clear error naming the id."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise NotFoundError(f"MLflow run {run_id!r} not found: {exc.message}") from None


def staging_version(client: Any, model_name: str) -> Any | None:
    """The model version holding the ``staging`` alias, or None when there is none yet."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        return client.get_model_version_by_alias(model_name, STAGING_ALIAS)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise PipelineError(f"MLflow could not look up {model_name}@{STAGING_ALIAS}: {exc}") from None


def staging_summary(client: Any, model_name: str, metric: str) -> dict[str, Any] | None:
    """What the quality gate and the data sensor need to know about the Staging model."""
    version = staging_version(client, model_name)
    if version is None:
        return None
    run = client.get_run(version.run_id) if version.run_id else None
    tags = {**(run.data.tags if run else {}), **(version.tags or {})}
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "data_version": tags.get(TAG_DATA_VERSION),
        "metric": metric,
        "value": run.data.metrics.get(metric) if run else None,
        "metrics": dict(run.data.metrics) if run else {},
    }
