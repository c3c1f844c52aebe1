"""Step 4: register the evaluated model in the MLflow Model Registry as the new Staging model.

Only an evaluated run can be registered: the step starts from evaluate's record
and checks the run holds the model and every metric before it creates anything,
so a failed or partial run registers nothing, and neither does a run the quality
gate stopped (evaluate's decision, pipeline_steps/gate.py): the step then says
why and registers nothing, which is how the local pipeline (`dvc repro`) keeps
to the same gate as the DAG. The new version gets the
``staging`` alias (and the deprecated Staging stage, which MLflow 3 still
honours and the UI still shows) and the provenance tags of its run: git commit,
data version, seed and the image of every step. The previous Staging version is
archived, so the stage and the alias always name the same one version.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from typing import Any

from pipeline_steps.services import provenance
from pipeline_steps.services import tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import RegisterResult
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import METRICS, Settings
from pipeline_steps.services.storage import Storage

log = logging.getLogger(__name__)
_COPIED_TAGS = (
    tracking.TAG_GIT_COMMIT,
    tracking.TAG_DATA_VERSION,
    tracking.TAG_SEED,
    tracking.TAG_DATASET,
    tracking.TAG_FEEDBACK,
)


def version_tags(settings: Settings, run: Any) -> dict[str, str]:
    """The provenance a model version carries: its run's tags plus the register image."""
    tags = {k: v for k, v in run.data.tags.items() if k in _COPIED_TAGS}
    tags.update(
        {k: v for k, v in run.data.tags.items() if k.startswith(tracking.IMAGE_TAG_PREFIX)}
    )
    tags.update(provenance.image_tag(settings, "register"))
    tags["run_id"] = run.info.run_id
    return tags


def _check_registrable(client: Any, run: Any) -> None:
    missing = [m for m in METRICS if m not in run.data.metrics]
    if missing:
        raise PipelineError(
            f"run {run.info.run_id} has no {', '.join(missing)} metric(s): "
            "evaluate it before registering"
        )
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    if tracking.MODEL_FILE not in artifacts:
        raise PipelineError(f"run {run.info.run_id} has no {tracking.MODEL_FILE} artifact")


def _production(client: Any, name: str) -> dict[str, Any] | None:
    """The version serving Production now, for the person who approves the new one."""
    version = tracking.version_by_alias(client, name, tracking.PRODUCTION_ALIAS)
    return tracking.version_summary(client, version) if version is not None else None


def stopped_by_gate(evaluated: dict[str, Any]) -> dict[str, Any] | None:
    """The result of a run the quality gate stopped (nothing registered), else None."""
    decision = evaluated.get("gate")
    if not decision:
        raise PipelineError(
            f"run {evaluated.get('run_id')} has no quality gate decision: evaluate it again "
            "with this version of the evaluate step before registering"
        )
    if decision["passed"]:
        return None
    return {
        "step": "register",
        "registered": False,
        "run_id": evaluated["run_id"],
        "reason": decision["reason"],
        # The DAG's branch never starts register for a stopped run; if it did, the task skips.
        "skip_reason": f"the quality gate stopped this run: {decision['reason']}",
    }


def register(settings: Settings, store: Storage, evaluated_uri: str) -> RegisterResult:
    """Register the run's model and point the ``staging`` alias at the new version, if the gate passed it."""
    evaluated = store.read_result(evaluated_uri)
    stopped = stopped_by_gate(evaluated)
    if stopped is not None:
        log.warning("no model registered: %s", stopped["reason"])
        return stopped
    client = tracking.connect(settings)
    run = tracking.get_run(client, evaluated["run_id"])
    _check_registrable(client, run)

    # Imported here: the registry API is only needed once the run checks out.
    import mlflow  # pylint: disable=import-outside-toplevel

    name = settings.model_name
    tags = version_tags(settings, run)
    version = mlflow.register_model(
        f"runs:/{run.info.run_id}/{tracking.LOGGED_MODEL_NAME}", name, tags=tags
    )
    client.set_registered_model_alias(name, tracking.STAGING_ALIAS, version.version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, aliases replace them
        client.transition_model_version_stage(
            name, version.version, "Staging", archive_existing_versions=True
        )
    result = {
        "step": "register",
        "registered": True,
        "model_name": name,
        "version": str(version.version),
        "alias": tracking.STAGING_ALIAS,
        "run_id": run.info.run_id,
        "data_version": tags.get(tracking.TAG_DATA_VERSION),
        "experiment_id": run.info.experiment_id,
        "metric": evaluated["metric"],
        "value": evaluated["value"],
        "reason": evaluated["gate"]["reason"],
        "metrics": evaluated["metrics"],
        "champion": evaluated.get("champion"),
        "production": _production(client, name),
    }
    log.info("registered %s version %s as %s", name, version.version, tracking.STAGING_ALIAS)
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    store = Storage(settings.s3)
    result = register(settings, store, args.evaluated)
    if args.output:
        store.write_result(args.output, result)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--evaluated", required=True, help="output location of the evaluate step")
    parser.add_argument("--output", help="where to write register.json (optional)")
    return run_cli(parser, _handle, argv)
