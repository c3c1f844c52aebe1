"""What the model server needs of MLflow, set up by the one job that holds MLflow's admin login.

The server reads MLflow as the user ``model-server`` (MLFLOW_SERVER_PASSWORD), who has
no permission of its own: the stack's MLflow gives every user READ by default
(images/mlflow/server.sh), so it may look up the alias and download models, and change
nothing that exists (MLflow's auth lets any user create a new experiment or model of its
own; no permission stops that). Creating users and webhooks is for admins only, so the stack's
``model-server-init`` job does both, before the server starts, and again on every
``make up`` (it changes nothing that is already right): the user with its password,
and the registry webhook on alias events, signed with SERVE_WEBHOOK_SECRET.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pipeline_steps.errors import NotFoundError, SettingsError
from pipeline_steps.services import rest, tracking
from pipeline_steps.settings import Settings

SERVER_USER = "model-server"
PASSWORD_VARIABLE = "MLFLOW_SERVER_PASSWORD"
WEBHOOK_NAME = "ct-model-server"
WEBHOOK_EVENTS = ["model_version_alias.created", "model_version_alias.deleted"]
log = logging.getLogger(__name__)


def ensure_user(settings: Settings, password: str) -> str:
    """Create the server's MLflow user, or give it this password; what was done."""
    uri, login = settings.mlflow_tracking_uri, settings.mlflow_login
    try:
        rest.call_json("MLflow", uri, "GET", f"/api/2.0/mlflow/users/get?username={SERVER_USER}", login=login)
    except NotFoundError:
        rest.call_json("MLflow", uri, "POST", "/api/2.0/mlflow/users/create", login=login,
                       body={"username": SERVER_USER, "password": password})
        return f"created MLflow user {SERVER_USER}"
    rest.call_json("MLflow", uri, "PATCH", "/api/2.0/mlflow/users/update-password", login=login,
                   body={"username": SERVER_USER, "password": password})
    return f"MLflow user {SERVER_USER} is there (password set from {PASSWORD_VARIABLE})"


def ensure_webhook(client: Any, url: str, secret: str) -> str:
    """Create the alias webhook to the server, or bring the one there up to date; what was done."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        found = [hook for hook in client.list_webhooks() if hook.name == WEBHOOK_NAME]
    except MlflowException as exc:
        # MLflow decrypts every stored webhook secret to list them: a changed key fails here.
        raise tracking.service_error(exc, (
            "cannot list MLflow's webhooks (the MLflow server decrypts their secrets with "
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, the stack's MLFLOW_WEBHOOK_KEY: was it changed?)")
        ) from None
    description = "the model server follows the production alias (make up's model-server-init)"
    try:
        if found:
            client.update_webhook(found[0].webhook_id, url=url, events=WEBHOOK_EVENTS, secret=secret,
                                  status="ACTIVE", description=description)
            return f"updated MLflow webhook {WEBHOOK_NAME} -> {url}"
        client.create_webhook(WEBHOOK_NAME, url, events=WEBHOOK_EVENTS, secret=secret,
                              description=description)
    except MlflowException as exc:
        raise tracking.service_error(exc, (
            f"cannot register MLflow's webhook to {url} (the MLflow server needs "
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true)")) from None
    return f"created MLflow webhook {WEBHOOK_NAME} -> {url}"


def setup(settings: Settings) -> dict[str, Any]:
    """The user and the webhook, with the admin login in MLFLOW_TRACKING_USERNAME/PASSWORD."""
    password = os.environ.get(PASSWORD_VARIABLE, "")
    if not password:
        raise SettingsError(f"{PASSWORD_VARIABLE} must be set: the model server's MLflow login")
    if not settings.serve_webhook_secret:
        raise SettingsError("SERVE_WEBHOOK_SECRET must be set: it signs MLflow's webhook to the model server")
    client = tracking.connect(settings)
    done = [ensure_user(settings, password)]
    done.append(ensure_webhook(client, settings.serve_webhook_url, settings.serve_webhook_secret))
    for line in done:
        log.info("%s", line)
    return {"step": "model_server", "message": "; ".join(done)}
