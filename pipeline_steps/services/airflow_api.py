"""Tell Airflow a data version is published, so the DAG scheduled on its Asset starts now.

Without it a new version waits for the daily run. Airflow 3's REST API takes
three calls: a JWT from ``POST /auth/token``, the asset's id from
``GET /api/v2/assets?uri_pattern=...``, then ``POST /api/v2/assets/events``.
The asset is the published pointer, whose URI the DAG declares too.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

from pipeline_steps.errors import NotFoundError, RequestRefusedError
from pipeline_steps.services.rest import call_json
from pipeline_steps.settings import AirflowApiSettings

SERVICE = "Airflow"
log = logging.getLogger(__name__)


def token(api: AirflowApiSettings) -> str:
    """A JWT for Airflow's REST API (`POST /auth/token`) as ``api.username``."""
    answer = call_json(
        SERVICE, api.url, "POST", "/auth/token",
        body={"username": api.username, "password": api.password},
    )
    jwt = answer.get("access_token") if isinstance(answer, dict) else None
    if not jwt:
        raise RequestRefusedError(f"Airflow at {api.url} gave no access token to {api.username!r}")
    return str(jwt)


def _asset_id(api: AirflowApiSettings, jwt: str, asset_uri: str) -> int:
    # uri_pattern matches substrings: s3://b/published/x.json also finds .../x.json.old.
    query = urllib.parse.urlencode({"uri_pattern": asset_uri, "limit": 100})
    answer = call_json(SERVICE, api.url, "GET", f"/api/v2/assets?{query}", token=jwt)
    for asset in answer.get("assets", []) if isinstance(answer, dict) else []:
        if asset.get("uri") == asset_uri:
            return int(asset["id"])
    raise NotFoundError(
        f"Airflow at {api.url} has no asset {asset_uri} (is the DAG scheduled on it parsed yet?)"
    )


def announce(api: AirflowApiSettings, asset_uri: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Post an event on the asset ``asset_uri``; return the event as Airflow recorded it."""
    jwt = token(api)
    asset_id = _asset_id(api, jwt, asset_uri)
    event = call_json(
        SERVICE, api.url, "POST", "/api/v2/assets/events",
        body={"asset_id": asset_id, "extra": extra}, token=jwt,
    )
    log.info("announced %s to Airflow: asset %s, event %s", asset_uri, asset_id, event.get("id"))
    return event
