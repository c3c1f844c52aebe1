"""Step 5: put an approved model version to work, or roll Production back to the one before.

``--version N`` (run after a person approved it in Airflow, or the run's
``auto_approve`` Param) moves the ``production`` alias to version N and records
who approved it and when, as tags of the version. ``--rollback`` moves the alias
back to the version approved before the current one and marks the current one
rolled back, so a second rollback goes further back instead of forth. The
deprecated stages follow the alias (Production, the previous one Archived),
because the MLflow UI still shows them. Batch scoring loads
``models:/<name>@production``, so its next run uses whatever this step left.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from datetime import datetime, timezone
from typing import Any

from pipeline_steps import provenance, tracking
from pipeline_steps.cli import exit_process, make_parser, run_cli
from pipeline_steps.errors import UsageError
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage

TAG_PROMOTED_AT = "production.promoted_at"
TAG_PROMOTED_BY = "production.approved_by"
TAG_ROLLED_BACK_AT = "production.rolled_back_at"
log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _serve(client: Any, name: str, version: str) -> None:
    """Point the alias (and the deprecated stage) at the version; the previous one is archived."""
    client.set_registered_model_alias(name, tracking.PRODUCTION_ALIAS, version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, aliases replace them
        client.transition_model_version_stage(name, version, "Production", archive_existing_versions=True)


def _get_version(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        raise tracking.service_error(exc, f"model {name} has no version {version}") from None


def promote(settings: Settings, version: str, approved_by: str) -> dict[str, Any]:
    """Serve ``version`` as Production; say which version it replaced."""
    client = tracking.connect(settings)
    name = settings.model_name
    candidate = _get_version(client, name, version)
    current = tracking.version_by_alias(client, name, tracking.PRODUCTION_ALIAS)
    previous = str(current.version) if current is not None else None
    if previous == str(candidate.version):
        message = f"{name} version {previous} already serves production: nothing changed"
    else:
        for key, value in {TAG_PROMOTED_AT: _now(), TAG_PROMOTED_BY: approved_by or "unknown",
                           **provenance.image_tag(settings, "promote")}.items():
            client.set_model_version_tag(name, str(candidate.version), key, value)
        _serve(client, name, str(candidate.version))
        was = f"was version {previous}" if previous else "the first Production model"
        message = (f"production now serves {name} version {candidate.version} "
                   f"({was}; approved by {approved_by})")
    log.info("%s", message)
    return {"step": "promote", "model_name": name, "alias": tracking.PRODUCTION_ALIAS,
            "version": str(candidate.version), "previous_version": previous, "message": message}


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


def rollback(settings: Settings) -> dict[str, Any]:
    """Serve the version approved before the current Production one; the current one is marked rolled back.

    With nothing to roll back to (no Production model, or none approved before it), nothing
    changes and the result says so (``skip_reason``): that is an answer, not a failure.
    """
    client = tracking.connect(settings)
    name = settings.model_name
    current = tracking.version_by_alias(client, name, tracking.PRODUCTION_ALIAS)
    if current is None:
        return {"step": "rollback", "skip_reason": f"{name} has no Production model to roll back"}
    versions = client.search_model_versions(f"name = '{name}'")
    target = previous_approved(versions, current)
    if target is None:
        return {"step": "rollback", "skip_reason": (
            f"nothing to roll back to: {name} version {current.version} is the only approved version "
            "left, and Production stays as it is")}
    client.set_model_version_tag(name, str(current.version), TAG_ROLLED_BACK_AT, _now())
    _serve(client, name, str(target.version))
    message = (f"production now serves {name} version {target.version} "
               f"(rolled back from version {current.version})")
    log.info("%s", message)
    return {"step": "rollback", "model_name": name, "alias": tracking.PRODUCTION_ALIAS,
            "version": str(target.version), "previous_version": str(current.version),
            "message": message}


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    if args.rollback == bool(args.version):
        raise UsageError("give either --version N (promote) or --rollback")
    result = rollback(settings) if args.rollback else promote(settings, args.version, args.approved_by)
    if args.output:
        Storage(settings.s3).write_manifest(args.output, "promote", result)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser("promote", __doc__.splitlines()[0])
    parser.add_argument("--version", help="the approved model version to serve as Production")
    parser.add_argument("--approved-by", default="unknown", help="who approved it (recorded on the version)")
    parser.add_argument("--rollback", action="store_true",
                        help="serve the version approved before the current one instead")
    parser.add_argument("--output", help="where to write promote.json (optional)")
    return run_cli(parser, _handle, argv)


if __name__ == "__main__":
    exit_process(main())
