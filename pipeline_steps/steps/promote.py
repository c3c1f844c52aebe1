"""Serve an approved model version as Production: the ``production`` alias moves to it.

``--version N`` runs after a person approved it in Airflow (or the run's
``auto_approve`` Param): the alias moves to version N, and who approved it and when
are recorded as tags of the version (pipeline_steps/modelling/production.py). Batch
scoring loads ``models:/<name>@production``, so its next run uses it.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import ProductionMove
from pipeline_steps.modelling.production import TAG_PROMOTED_AT, TAG_PROMOTED_BY, get_version, now, serve
from pipeline_steps.services import provenance, tracking
from pipeline_steps.services.storage import Storage
from pipeline_steps.settings import Settings

log = logging.getLogger(__name__)


def promote(settings: Settings, version: str, approved_by: str) -> ProductionMove:
    """Serve ``version`` as Production; say which version it replaced."""
    client = tracking.connect(settings)
    name = settings.model_name
    candidate = get_version(client, name, version)
    current = tracking.version_by_alias(client, name, tracking.PRODUCTION_ALIAS)
    previous = str(current.version) if current is not None else None
    if previous == str(candidate.version):
        message = f"{name} version {previous} already serves production: nothing changed"
    else:
        for key, value in {TAG_PROMOTED_AT: now(), TAG_PROMOTED_BY: approved_by or "unknown",
                           **provenance.image_tag(settings, "promote")}.items():
            client.set_model_version_tag(name, str(candidate.version), key, value)
        serve(client, name, str(candidate.version))
        was = f"was version {previous}" if previous else "the first Production model"
        message = (f"production now serves {name} version {candidate.version} "
                   f"({was}; approved by {approved_by})")
    log.info("%s", message)
    return {"step": "promote", "model_name": name, "alias": tracking.PRODUCTION_ALIAS,
            "version": str(candidate.version), "previous_version": previous, "message": message}


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    result = promote(settings, args.version, args.approved_by)
    if args.output:
        Storage(settings.s3).write_result(args.output, result)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--version", required=True, help="the approved model version to serve as Production")
    parser.add_argument("--approved-by", default="unknown", help="who approved it (recorded on the version)")
    parser.add_argument("--output", help="where to write its result (optional)")
    return run_cli(parser, _handle, argv)
