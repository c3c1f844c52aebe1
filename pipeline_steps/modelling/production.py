"""The ``production`` alias: which version serves, who approved it, and the way back.

Promotion (after a person's approval) and rollback both move the alias, and the
deprecated stages follow it (Production, the previous one Archived), because the
MLflow UI still shows them. Each move is recorded on the versions as tags, which
is how a rollback finds the version approved before the current one.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from typing import Any

from pipeline_steps.services import tracking

TAG_PROMOTED_AT = "production.promoted_at"
TAG_PROMOTED_BY = "production.approved_by"
TAG_ROLLED_BACK_AT = "production.rolled_back_at"


def now() -> str:
    """The time a move is recorded with (UTC, to the microsecond: two moves never tie)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def serve(client: Any, name: str, version: str) -> None:
    """Point the alias (and the deprecated stage) at the version; the previous one is archived."""
    client.set_registered_model_alias(name, tracking.PRODUCTION_ALIAS, version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, aliases replace them
        client.transition_model_version_stage(name, version, "Production", archive_existing_versions=True)


def get_version(client: Any, name: str, version: str) -> Any:
    """A version of the model, or an error naming it."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        raise tracking.service_error(exc, f"model {name} has no version {version}") from None


def previous_approved(versions: list[Any], current: Any) -> Any | None:
    """The version approved last before ``current`` and not rolled back since; None when there is none."""
    current_at = (current.tags or {}).get(TAG_PROMOTED_AT) or "~"  # "~" sorts after any timestamp
    earlier = [
        v for v in versions
        if str(v.version) != str(current.version)
        and (v.tags or {}).get(TAG_PROMOTED_AT, "~") < current_at
        and TAG_ROLLED_BACK_AT not in (v.tags or {})
    ]
    return max(earlier, key=lambda v: v.tags[TAG_PROMOTED_AT], default=None)
