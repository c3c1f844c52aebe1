"""Step 2: train an XGBoost classifier on the prepared split and track it in MLflow.

The run records the parameters, the seed, the data version, the git commit, the
image of each step so far, the training schema (``schema.json``: columns,
kinds, category levels, classes, and the columns dropped with why), the count
of rows prepare left out and why (``rows.*`` tags) and the hashes of the rows the
model learnt (``train_rows.npy``: evaluate uses them to tell, later, which test
rows a Staging model has seen). ``model.pkl``
is saved to ``--output`` and to the run, and the model is also logged as an MLflow
pyfunc that answers in the user's labels, which is what the registry versions.
``train.json`` under ``--output`` tells evaluate where it all is. With
``--tuned`` (the tune step's output), the study's best parameters go over
params.yaml's ``train.xgb`` and the run is tagged with the study's run.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from typing import Any

from pipeline_steps.data import tables
from pipeline_steps.services import provenance
from pipeline_steps.data import rows
from pipeline_steps.data import split
from pipeline_steps.data import versions
from pipeline_steps.services import storage
from pipeline_steps.services import tracking
from pipeline_steps.modelling.model import LabelledModel, fit
from pipeline_steps.data.schema import TableSchema
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.results import TrainResult
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage

log = logging.getLogger(__name__)
TAG_TUNE_RUN = "tune.run_id"


def _log_run(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    settings: Settings, manifest: dict[str, Any], model: LabelledModel, files: dict[str, bytes], frame: Any,
    tuned: tuple[dict[str, Any], str | None],
) -> Any:
    # pylint: disable=import-outside-toplevel
    import mlflow

    from pipeline_steps.modelling import registry

    mlflow.set_experiment(settings.mlflow_experiment_name)
    tags = {
        **provenance.run_tags(settings, "train"),
        f"{tracking.IMAGE_TAG_PREFIX}prepare": manifest.get("image") or provenance.NOT_IN_AN_IMAGE,
        tracking.TAG_DATA_VERSION: manifest["data_version"],
        tracking.TAG_SEED: str(settings.seed),
        tracking.TAG_DATASET: manifest["dataset"],
        **({tracking.TAG_FEEDBACK: versions.feedback_line(manifest["feedback"])}
           if manifest.get("feedback") else {}),
        "prepared_uri": manifest["prepared_uri"],
        split.SCHEME_TAG: manifest["split"],
        **rows.tags(manifest["rows"], manifest["rows_train"], manifest["rows_test"]),
    }
    xgb_params, tune_run = tuned
    if tune_run:
        tags[TAG_TUNE_RUN] = tune_run
    params = {
        **{f"xgb.{k}": v for k, v in xgb_params.items()},
        "seed": settings.seed,
        "test_size": manifest["test_size"],
        "drop_duplicate_rows": manifest["drop_duplicate_rows"],
        "invalid_numbers": manifest["invalid_numbers"],
        "target": manifest["target"],
        "classes": ",".join(map(str, model.schema.classes)),
        "positive_class": model.schema.positive_class,
        "dropped_columns": ",".join(model.schema.dropped) or "none",
        "rows_train": manifest["rows_train"],
        "data_version": manifest["data_version"],
    }
    if model.schema.notes:
        tags[tracking.TAG_SCHEMA_WARNINGS] = "; ".join(model.schema.notes)[:5000]
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_dict(model.schema.to_dict(), tracking.SCHEMA_FILE)
        tracking.log_files(mlflow.MlflowClient(), run.info.run_id, files)
        registry.log(model, files[tracking.MODEL_FILE], frame, tracking.LOGGED_MODEL_NAME)
    return run


def tuned_params(settings: Settings, store: Storage,
                 tuned_uri: str | None) -> tuple[dict[str, Any], str | None]:
    """The XGBoost parameters to fit with: train.xgb, and a tune step's best over them; its run."""
    if not tuned_uri:
        return dict(settings.xgb_params), None
    found = store.read_result(tuned_uri)
    return {**settings.xgb_params, **(found.get("best_params") or {})}, found.get("run_id")


def train(settings: Settings, store: Storage, prepared_uri: str, output_uri: str,
          tuned_uri: str | None = None) -> TrainResult:
    """Fit on the prepared train split, track the run, write ``model.pkl`` and ``train.json``."""
    manifest = store.read_result(prepared_uri)
    tuned = tuned_params(settings, store, tuned_uri)
    tracking.connect(settings)  # fail before the work if MLflow is not there
    frame = tables.read_frame(store, manifest["train_uri"])
    schema = TableSchema.from_dict(manifest["schema"])
    for note in schema.notes:
        log.warning("%s", note)
    model = fit(frame, schema, tuned[0], settings.seed)
    model_bytes = pickle.dumps(model)
    files = {tracking.MODEL_FILE: model_bytes,
             split.TRAIN_ROWS_FILE: store.read_bytes(manifest["train_rows_uri"])}
    run = _log_run(settings, manifest, model, files, frame, tuned)

    result = {
        "step": "train",
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "data_version": manifest["data_version"],
        "seed": settings.seed,
        "xgb_params": tuned[0],
        "tune_run_id": tuned[1],
        "model_uri": storage.join(output_uri, tracking.MODEL_FILE),
        "trained_uri": output_uri,
        "prepared_uri": prepared_uri,
    }
    store.write_bytes(result["model_uri"], model_bytes)
    store.write_result(output_uri, result)
    log.info("run %s: trained on %s", run.info.run_id, manifest["data_version"])
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return train(settings, Storage(settings.s3), args.prepared, args.output, args.tuned)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--prepared", required=True, help="output location of the prepare step")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    parser.add_argument("--tuned", help="output location of the tune step: fit with its best parameters")
    return run_cli(parser, _handle, argv)
