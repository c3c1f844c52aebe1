"""JSON over HTTP to the services' REST APIs (MLflow, Airflow), with errors that say whether to retry.

The steps use it, and so does the host's Airflow client (`make run`, the stack tests).

The standard library is enough, so no step image carries an HTTP client for
this. A service that is down, slow or failing on its side (5xx, 408, 429) gives
a retryable :class:`ServiceUnreachableError`; one that answers any other 4xx
refuses every retry the same way, so it gives a permanent error.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from pipeline_steps.errors import (
    NotFoundError,
    PipelineError,
    RequestRefusedError,
    ServiceUnreachableError,
)

TIMEOUT_SECONDS = 10
_TRANSIENT_STATUSES = (408, 429)


def call_json(
    service: str,
    base_url: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    token: str | None = None,
    login: tuple[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> Any:
    """Send ``body`` as JSON to ``base_url + path`` and return the parsed JSON answer.

    ``token`` logs in with a bearer token (Airflow), ``login`` with a user and password (MLflow).
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif login:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(login).encode()).decode()
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    what = f"{method} {path.partition('?')[0]}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise _status_error(service, base_url, what, exc) from None
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, reset
        reason = getattr(exc, "reason", exc)
        raise ServiceUnreachableError(f"{service} unreachable at {base_url} ({reason})") from None
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        raise PipelineError(
            f"{service} at {base_url} answered {what} with something that is not JSON: "
            f"{payload[:80]!r}"
        ) from None


def _status_error(service: str, base_url: str, what: str, exc: urllib.error.HTTPError) -> PipelineError:
    detail = exc.read(200).decode(errors="replace").strip()
    message = f"{service} at {base_url} answered {what} with HTTP {exc.code} ({detail})"
    if exc.code >= 500 or exc.code in _TRANSIENT_STATUSES:
        return ServiceUnreachableError(message)
    if exc.code == 404:
        return NotFoundError(message)
    if exc.code == 401:
        return RequestRefusedError(f"{message}: the login is missing or wrong")
    return RequestRefusedError(message)
