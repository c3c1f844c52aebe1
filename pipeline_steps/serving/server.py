"""The model server as the stack runs it: the API wired to MLflow, S3 and the notifier, on uvicorn.

``python -m pipeline_steps model_server`` starts SERVE_PROCESSES uvicorn processes
on port 8000; each builds its own app (:func:`app_from_environment`), so each loads
the Production model and follows its alias on its own. They share a folder
(``CT_SERVE_STATE_DIR``): a webhook delivery to one nudges them all, a refusal is
notified once, and the Prometheus counters of all of them are added up.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pipeline_steps.cli import configure_logging
from pipeline_steps.modelling import registry
from pipeline_steps.serving import STATE_VARIABLE, feedback, metrics, notify
from pipeline_steps.serving.app import ServerConfig, create_app
from pipeline_steps.serving.follower import Follower, Served, Target, checked, now
from pipeline_steps.serving.prediction_log import BufferedLog
from pipeline_steps.services import tracking
from pipeline_steps.services.storage import Storage
from pipeline_steps.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)


class Registry:
    """The model's versions in MLflow, with one client made on first use (MLflow may start after us)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The MLflow client (its first call checks the server answers and the login works)."""
        if self._client is None:
            self._client = tracking.connect(self._settings)
        return self._client

    def production(self) -> Target | None:
        """Where the production alias points now."""
        found = tracking.version_by_alias(self.client, self._settings.model_name, tracking.PRODUCTION_ALIAS)
        return None if found is None else Target(str(found.version), found.run_id)

    def load(self, target: Target) -> Served:
        """Download a version, load it and check it on its input example."""
        name = self._settings.model_name
        downloaded = registry.download(f"models:/{name}/{target.version}")
        model = checked(downloaded.model, downloaded.example)
        if hasattr(model.classifier, "set_params"):
            model.classifier.set_params(n_jobs=1)  # one request's rows: threads cost more than they save
        data_version = None
        if target.run_id:
            run = tracking.get_run(self.client, target.run_id)
            data_version = run.data.tags.get(tracking.TAG_DATA_VERSION)
        return Served(model, name, target.version, target.run_id, data_version, now())


def build(settings: Settings, state: Path | None = None) -> Any:
    """The server's app, wired to the stack's MLflow, S3 and notifier; ``state``: the folder the
    processes share."""
    if not settings.serve_api_key:
        raise SettingsError("SERVE_API_KEY must be set: prediction requests are refused without a key")
    versions = Registry(settings)
    name = settings.model_name

    def swapped(served: Served) -> None:
        metrics.SWAPS.inc()
        metrics.VERSION.labels(name).set(float(served.version))

    def refused(version: str, reason: str) -> None:
        metrics.REFUSED.inc()
        current = follower.current
        notify.refused(settings.ct_notify_webhook, name, version, reason,
                       current.version if current else None, markers=state)

    follower = Follower(versions.production, versions.load, check_seconds=settings.serve_alias_check_seconds,
                        on_swapped=swapped, on_refused=refused,
                        nudge_file=state / "alias-moved" if state else None)
    metrics.VERSION.labels(name).set(0)
    prediction_log = BufferedLog(Storage(settings.s3), settings.s3_prediction_log_bucket,
                                 flush_rows=settings.serve_log_flush_rows,
                                 flush_seconds=settings.serve_log_flush_seconds,
                                 on_written=metrics.LOGGED.inc, on_dropped=metrics.DROPPED.inc)
    config = ServerConfig(name, settings.serve_api_key, settings.serve_webhook_secret,
                          settings.serve_max_request_bytes, settings.csv_delimiter)
    labels = feedback.LabelStore(Storage(settings.s3), settings.s3_prediction_log_bucket)
    return create_app(config, follower, prediction_log, labels)


def app_from_environment() -> Any:
    """uvicorn's factory: one app per server process, from the settings in the environment."""
    configure_logging()  # a process of its own: the command line's logging is not inherited
    state = os.environ.get(STATE_VARIABLE)
    return build(load_settings(), Path(state) if state else None)


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the server until it is stopped (SIGTERM: each process writes its waiting log rows first).

    Run by :func:`pipeline_steps.steps.model_server.main`, which names the shared folder
    (``CT_SERVE_STATE_DIR``) and the metrics' folder before this module is imported.
    """
    import uvicorn  # pylint: disable=import-outside-toplevel

    log.info("model server for %s on port %d, %d process(es)", settings.model_name, port,
             settings.serve_processes)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, host=host, port=port,
                workers=settings.serve_processes, log_level="warning", access_log=False,
                timeout_graceful_shutdown=20)
