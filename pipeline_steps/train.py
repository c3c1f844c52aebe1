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

from pipeline_steps import data, provenance, rows, split, storage, tracking
from pipeline_steps.model import LabelledModel, fit
from pipeline_steps.schema import TableSchema
from pipeline_steps.cli import exit_process, make_parser, run_cli
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage

log = logging.getLogger(__name__)
TAG_TUNE_RUN = "tune.run_id"


def _log_run(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    settings: Settings, manifest: dict[str, Any], model: LabelledModel, files: dict[str, bytes], frame: Any,
    tuned: tuple[dict[str, Any], str | None],
) -> Any:
    # pylint: disable=import-outside-toplevel
    import mlflow

    from pipeline_steps import registry_model

    mlflow.set_experiment(settings.mlflow_experiment)
    tags = {
        **provenance.run_tags(settings, "train"),
        f"{tracking.IMAGE_TAG_PREFIX}prepare": manifest.get("image") or provenance.NOT_IN_AN_IMAGE,
        tracking.TAG_DATA_VERSION: manifest["data_version"],
        tracking.TAG_SEED: str(settings.seed),
        tracking.TAG_DATASET: manifest["dataset"],
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
        registry_model.log(model, files[tracking.MODEL_FILE], frame, tracking.LOGGED_MODEL_NAME)
    return run


def tuned_params(settings: Settings, store: Storage,
                 tuned_uri: str | None) -> tuple[dict[str, Any], str | None]:
    """The XGBoost parameters to fit with: train.xgb, and a tune step's best over them; its run."""
    if not tuned_uri:
        return dict(settings.xgb_params), None
    found = store.read_manifest(tuned_uri, "tune")
    return {**settings.xgb_params, **(found.get("best_params") or {})}, found.get("run_id")


def train(settings: Settings, store: Storage, prepared_uri: str, output_uri: str,
          tuned_uri: str | None = None) -> dict[str, Any]:
    """Fit on the prepared train split, track the run, write ``model.pkl`` and ``train.json``."""
    manifest = store.read_manifest(prepared_uri, "prepare")
    tuned = tuned_params(settings, store, tuned_uri)
    tracking.connect(settings)  # fail before the work if MLflow is not there
    frame = data.read_frame(store, manifest["train_uri"])
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
    store.write_manifest(output_uri, "train", result)
    log.info("run %s: trained on %s", run.info.run_id, manifest["data_version"])
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return train(settings, Storage(settings.s3), args.prepared, args.output, args.tuned)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser("train", __doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="output location of the prepare step")
    parser.add_argument("--output", required=True, help="output location (path or s3:// URI)")
    parser.add_argument("--tuned", help="output location of the tune step: fit with its best parameters")
    return run_cli(parser, _handle, argv)


if __name__ == "__main__":
    exit_process(main())
