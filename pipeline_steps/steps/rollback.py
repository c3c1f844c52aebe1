"""Serve the model version approved before the current Production one again.

The ``production`` alias moves back, and the version it leaves is marked rolled
back, so a second rollback goes further back instead of forth. With nothing to
roll back to, nothing changes and the result says so.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import ProductionMove
from pipeline_steps.modelling.production import TAG_ROLLED_BACK_AT, now, previous_approved, serve
from pipeline_steps.services import tracking
from pipeline_steps.settings import Settings

log = logging.getLogger(__name__)


def rollback(settings: Settings) -> ProductionMove:
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
    client.set_model_version_tag(name, str(current.version), TAG_ROLLED_BACK_AT, now())
    serve(client, name, str(target.version))
    message = (f"production now serves {name} version {target.version} "
               f"(rolled back from version {current.version})")
    log.info("%s", message)
    return {"step": "rollback", "model_name": name, "alias": tracking.PRODUCTION_ALIAS,
            "version": str(target.version), "previous_version": str(current.version),
            "message": message}


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:  # pylint: disable=unused-argument
    return rollback(settings)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    return run_cli(make_parser(__name__, __doc__), _handle, argv)
