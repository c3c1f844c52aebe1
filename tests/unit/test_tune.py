"""The optional tune step: a seeded, bounded Optuna study on the train split, on real S3 and MLflow."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest

from pipeline_steps.steps import prepare
from pipeline_steps.steps import train
from pipeline_steps.steps import tune
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage


@pytest.fixture
def prepared(settings: Settings, store: Storage, run_prefix: str) -> dict:
    source = f"{run_prefix}/input/data.csv"
    store.write_bytes(source, builtin_csv("breast_cancer"))
    return prepare.prepare(settings, store, f"{run_prefix}/prepare", input_uri=source)


def tuning_on(settings: Settings, trials: int, folds: int) -> Settings:
    """The settings with tuning on, bounded by trials (the time box is generous)."""
    return dataclasses.replace(settings, tune_enabled=True, tune_trials=trials, tune_timeout_seconds=600,
                               tune_folds=folds)


def test_five_trials_give_the_same_best_parameters_twice_and_each_trial_is_a_nested_run(
    settings: Settings, store: Storage, run_prefix: str, prepared: dict
) -> None:
    first = tune.tune(tuning_on(settings, 5, 3), store, prepared["prepared_uri"], f"{run_prefix}/tune-a")
    second = tune.tune(tuning_on(settings, 5, 3), store, prepared["prepared_uri"], f"{run_prefix}/tune-b")

    assert first["trials"] == second["trials"] == 5
    assert first["best_params"] == second["best_params"]
    assert first["best_value"] == second["best_value"] > 0.9
    assert set(first["best_params"]) == {"n_estimators", "max_depth", "learning_rate", "subsample",
                                         "colsample_bytree", "min_child_weight", "reg_lambda"}
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    parent = client.get_run(first["run_id"])
    trials = client.search_runs([parent.info.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{first['run_id']}'")
    assert len(trials) == 5
    assert max(run.data.metrics["cv.f1"] for run in trials) == pytest.approx(first["best_value"])
    assert parent.data.params["best.max_depth"] == str(first["best_params"]["max_depth"])
    assert parent.data.metrics["best.cv.f1"] == pytest.approx(first["best_value"])


def test_train_fits_with_the_best_parameters_and_names_the_study(
    settings: Settings, store: Storage, run_prefix: str, prepared: dict
) -> None:
    tuned = tune.tune(tuning_on(settings, 2, 2), store, prepared["prepared_uri"], f"{run_prefix}/tune")
    trained = train.train(settings, store, prepared["prepared_uri"], f"{run_prefix}/train",
                          tuned_uri=f"{run_prefix}/tune")

    assert trained["xgb_params"] == {**settings.xgb_params, **tuned["best_params"]}
    assert trained["tune_run_id"] == tuned["run_id"]
    run = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(trained["run_id"])
    assert run.data.tags["tune.run_id"] == tuned["run_id"]
    assert run.data.params["xgb.max_depth"] == str(tuned["best_params"]["max_depth"])


def test_with_tuning_off_the_step_only_says_so_and_train_keeps_params_yaml(
    settings: Settings, store: Storage, run_prefix: str, prepared: dict
) -> None:
    assert settings.tune_enabled is False  # params.yaml's default
    off = tune.tune(settings, store, prepared["prepared_uri"], f"{run_prefix}/tune")
    assert (off["enabled"], off["best_params"]) == (False, {})
    assert "run_id" not in off  # no study, no MLflow run
    trained = train.train(settings, store, prepared["prepared_uri"], f"{run_prefix}/train",
                          tuned_uri=f"{run_prefix}/tune")
    assert trained["xgb_params"] == settings.xgb_params
    assert trained["tune_run_id"] is None
