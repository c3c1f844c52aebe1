"""Step 0: is there a data version newer than the one the Staging model was trained on?

Reads the published pointer of the dataset (written by ``publish_data``) and the
``data_version`` tag of the model holding the ``staging`` alias. It only reads:
the sensor in Airflow calls it again and again.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline_steps.services import tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import CheckDataResult
from pipeline_steps.errors import NotFoundError
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage

log = logging.getLogger(__name__)


def check_data(settings: Settings, store: Storage, pointer_uri: str | None = None) -> CheckDataResult:
    """Compare the newest published data version with the Staging model's."""
    pointer_uri = pointer_uri or settings.published_pointer_uri
    try:
        published = store.read_json(pointer_uri)
    except NotFoundError:
        # A stack set up for the user's own table starts with nothing published: not a failure.
        log.warning("no data version of %r is published at %s yet (make publish FILE=...)",
                    settings.dataset_name, pointer_uri)
        published = {"md5": None}
    client = tracking.connect(settings)
    staging = tracking.staging_summary(client, settings.model_name, settings.quality_metric)
    staging_version = staging["data_version"] if staging else None
    latest = published["md5"]
    result = {
        "step": "check_data",
        "dataset": settings.dataset_name,
        "latest_version": latest,
        "published_at": published.get("published_at"),
        "staging_version": staging_version,
        "staging_model_version": staging["version"] if staging else None,
        "new_data": latest is not None and latest != staging_version,
    }
    log.info("latest %s, staging trained on %s", latest, staging_version)
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return check_data(settings, Storage(settings.s3), args.pointer)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument(
        "--pointer", help="published pointer location (default: from S3_DATA_BUCKET and DATASET_NAME)"
    )
    return run_cli(parser, _handle, argv)
