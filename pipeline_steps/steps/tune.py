"""Optional step: tune XGBoost's parameters with Optuna, on the train split alone, within a time box.

Off by default (params.yaml ``tune.enabled``, the DAG's ``tune`` Param). A seeded
TPE study proposes parameters over params.yaml's ``train.xgb``; each trial is
scored by stratified k-fold cross-validation on the prepared train split, on the
quality gate's metric, so the test split stays unseen until evaluate and the
model is tuned for what the gate asks. The study stops after ``tune.trials``
trials or ``tune.timeout_seconds``, whichever comes first; with the same seed
and data, a study that ran all its trials gives the same best parameters.

Each trial is a nested MLflow run under the study's run, which holds the best
parameters and score. ``tune.json`` under ``--output`` hands them to train
(``train --tuned``). With tuning off, the step writes only that it did nothing,
so the local pipeline's ``tune`` stage costs nothing by default.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from pipeline_steps.data import tables
from pipeline_steps.services import provenance
from pipeline_steps.services import tracking
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.errors import data_problem
from pipeline_steps.modelling.metrics import compute_metrics
from pipeline_steps.modelling.model import fit
from pipeline_steps.data.schema import TableSchema
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage

log = logging.getLogger(__name__)
BEST_PREFIX = "best."


def suggest(trial: Any) -> dict[str, Any]:
    """The search space: the parameters that matter most for gradient-boosted trees on tables."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def cross_validated(settings: Settings, frame: Any, schema: TableSchema, params: dict[str, Any]) -> float:
    """The gate's metric, averaged over stratified folds of the train split."""
    from sklearn.model_selection import StratifiedKFold  # pylint: disable=import-outside-toplevel

    codes = schema.encode_labels(frame[schema.target]).to_numpy()
    folds = StratifiedKFold(n_splits=settings.tune_folds, shuffle=True, random_state=settings.seed)
    with data_problem(f"the train split cannot be cut into {settings.tune_folds} stratified folds"):
        cut = list(folds.split(frame, codes))
    scores = []
    for fit_rows, held_rows in cut:
        model = fit(frame.iloc[fit_rows], schema, params, settings.seed)
        held = frame.iloc[held_rows]
        probabilities = model.predict_proba(held)
        measured = compute_metrics(codes[held_rows], probabilities.argmax(axis=1), probabilities,
                                   schema.positive_code)
        scores.append(measured[settings.quality_metric])
    return float(sum(scores) / len(scores))


def study(settings: Settings, frame: Any, schema: TableSchema, parent_run_id: str) -> Any:
    """Run the bounded, seeded study; each trial logs itself as a nested run of ``parent_run_id``."""
    # pylint: disable=import-outside-toplevel
    import mlflow
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        params = {**settings.xgb_params, **suggest(trial)}
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True,
                              parent_run_id=parent_run_id):
            mlflow.log_params({f"xgb.{k}": v for k, v in params.items()})
            score = cross_validated(settings, frame, schema, params)
            mlflow.log_metric(f"cv.{settings.quality_metric}", score)
        log.info("trial %d: cv %s=%.4f", trial.number, settings.quality_metric, score)
        return score

    found = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=settings.seed))
    found.optimize(objective, n_trials=settings.tune_trials, timeout=settings.tune_timeout_seconds)
    return found


def tune(settings: Settings, store: Storage, prepared_uri: str, output_uri: str) -> dict[str, Any]:
    """Tune when enabled and write ``tune.json``: the best parameters, or that tuning was off."""
    result: dict[str, Any] = {"step": "tune", "enabled": settings.tune_enabled, "tuned_uri": output_uri}
    if not settings.tune_enabled:
        result["best_params"] = {}
        store.write_result(output_uri, result)
        log.info("tuning is off (tune.enabled in params.yaml, TUNE_ENABLED): train uses train.xgb")
        return result
    import mlflow  # pylint: disable=import-outside-toplevel

    manifest = store.read_result(prepared_uri)
    tracking.connect(settings)
    frame = tables.read_frame(store, manifest["train_uri"])
    schema = TableSchema.from_dict(manifest["schema"])
    mlflow.set_experiment(settings.mlflow_experiment_name)
    started = time.monotonic()
    tags = {**provenance.run_tags(settings, "tune"), tracking.TAG_DATA_VERSION: manifest["data_version"],
            tracking.TAG_SEED: str(settings.seed)}
    with mlflow.start_run(run_name="tune", tags=tags) as parent:
        mlflow.log_params({"metric": settings.quality_metric, "trials": settings.tune_trials,
                           "timeout_seconds": settings.tune_timeout_seconds, "folds": settings.tune_folds})
        found = study(settings, frame, schema, parent.info.run_id)
        best = dict(found.best_params)
        mlflow.log_params({f"{BEST_PREFIX}{k}": v for k, v in best.items()})
        mlflow.log_metric(f"{BEST_PREFIX}cv.{settings.quality_metric}", found.best_value)
    result.update({
        "run_id": parent.info.run_id,
        "data_version": manifest["data_version"],
        "metric": settings.quality_metric,
        "best_value": found.best_value,
        "best_params": best,
        "trials": len(found.trials),
        "seconds": round(time.monotonic() - started, 1),
    })
    store.write_result(output_uri, result)
    log.info("tuned in %d trials (%.0fs): cv %s=%.4f with %s", result["trials"], result["seconds"],
             settings.quality_metric, found.best_value, best)
    return result


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return tune(settings, Storage(settings.s3), args.prepared, args.output)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--prepared", required=True, help="output location of the prepare step")
    parser.add_argument("--output", required=True, help="where to write tune.json (path or s3:// URI)")
    return run_cli(parser, _handle, argv)
