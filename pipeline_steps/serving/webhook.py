"""MLflow's registry webhook: a signed delivery that an alias moved, checked before it is believed.

MLflow (3.3+) POSTs ``{"entity", "action", "timestamp", "data"}`` with the headers
X-MLflow-Delivery-Id, X-MLflow-Timestamp and X-MLflow-Signature: ``v1,`` then the
base64 HMAC-SHA256, keyed with the webhook's secret, of ``<delivery id>.<timestamp>.<body>``
(mlflow/webhooks/delivery.py). A delivery that is unsigned, signed with another
secret, or older than a few minutes (a replay) is refused. A delivery only makes
the server look at MLflow now: what it serves is always what MLflow says when asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
MAX_AGE_SECONDS = 300
ALIAS_ENTITY = "model_version_alias"


class WebhookRefused(ValueError):
    """A delivery that is not MLflow's, with this secret, now."""


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The signature header MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verified(secret: str, headers: Mapping[str, str], body: bytes,
             now: float | None = None) -> dict[str, Any]:
    """The delivery's JSON, once its signature and age are checked; :class:`WebhookRefused` otherwise."""
    signature = headers.get(SIGNATURE_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    delivery_id = headers.get(DELIVERY_HEADER, "")
    if not (signature and timestamp and delivery_id):
        raise WebhookRefused("not a signed MLflow webhook delivery")
    if not hmac.compare_digest(signature, sign(secret, delivery_id, timestamp, body)):
        raise WebhookRefused("the signature does not match this server's webhook secret")
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        raise WebhookRefused(f"the timestamp {timestamp!r} is not a Unix time") from None
    if abs(age) > MAX_AGE_SECONDS:
        raise WebhookRefused(f"the delivery is {int(age)} s old (more than {MAX_AGE_SECONDS} s)")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookRefused("the body is not JSON") from None
    return payload if isinstance(payload, dict) else {}


def moves_alias(payload: Mapping[str, Any], model_name: str, alias: str) -> bool:
    """Whether the delivery says this model's alias moved (was set or deleted)."""
    data = payload.get("data") or {}
    return (payload.get("entity") == ALIAS_ENTITY and isinstance(data, Mapping)
            and data.get("name") == model_name and data.get("alias") == alias)
