"""`make reproduce VERSION=N`: a registered version re-run from what the registry recorded, compared.

Against the real S3 and MLflow servers: the data version comes from the DVC remote,
the settings from the version's run, and the steps run as the CLIs they are (here
locally: the unit tests' runs were not made in an image).
"""

from __future__ import annotations

import mlflow
import pytest

from pipeline_steps.steps import publish_data
from pipeline_steps.tools import reproduce
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.services.provenance import NOT_IN_AN_IMAGE
from pipeline_steps.settings import Settings, load_settings
from pipeline_steps.services.storage import Storage
from tests.unit.pipeline_run import run_steps


@pytest.fixture
def registered(settings: Settings, store: Storage, run_prefix: str,
               monkeypatch: pytest.MonkeyPatch) -> dict:
    """Version 1, trained with settings unlike params.yaml's; the settings are unset afterwards."""
    published = publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")
    monkeypatch.setenv("XGB_PARAMS", '{"max_depth": 2, "n_estimators": 40, "learning_rate": 0.3}')
    monkeypatch.setenv("DROP_COLUMNS", "mean_radius,worst_area")
    monkeypatch.setenv("SEED", "7")
    monkeypatch.setenv("TEST_SIZE", "0.3")
    run = run_steps(load_settings(), store, run_prefix, data_version=published["md5"])
    for name in ("XGB_PARAMS", "DROP_COLUMNS", "SEED", "TEST_SIZE"):
        monkeypatch.delenv(name)
    return run.registered


def _versions(settings: Settings) -> list[str]:
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    return [v.version for v in client.search_model_versions(f"name = '{settings.model_name}'")]


def test_a_version_reproduces_with_identical_metrics_from_the_registry_alone_and_registers_nothing(
    settings: Settings, registered: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reproduce.main(["--version", registered["version"]]) == reproduce.EXIT_SAME

    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"reproduced: {settings.model_name} version 1, every metric identical")
    assert out[-1].endswith("; nothing registered)")
    # The recorded settings were used, not today's defaults (depth 4, seed 42, no column dropped).
    assert '"max_depth": 2' in out[2] and "seed 7" in out[1]
    for metric in ("accuracy", "f1", "roc_auc", "rows_train"):
        assert any(line.split()[0] == metric and line.endswith("same") for line in out), out
    assert all(f"{step:<9} ran locally" in "\n".join(out) for step in reproduce.STEPS)
    assert _versions(settings) == ["1"]

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    rerun = client.search_runs(
        [client.get_experiment_by_name(f"ct-pipeline{reproduce.EXPERIMENT_SUFFIX}").experiment_id],
        filter_string=f"tags.reproduces = '{settings.model_name}/1 (run {registered['run_id']})'",
    )
    assert len(rerun) == 1
    assert rerun[0].data.tags[reproduce.TAG_OUTCOME] == "identical"
    assert rerun[0].data.params["xgb.max_depth"] == "2"
    assert rerun[0].data.metrics["f1"] == registered["metrics"]["f1"]


def test_a_number_that_comes_out_different_is_named_and_exits_non_zero(
    settings: Settings, registered: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    client.log_metric(registered["run_id"], "f1", 0.5)  # as if the recorded run had scored otherwise

    assert reproduce.main(["--version", registered["version"]]) == reproduce.EXIT_DIFFERENT

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"not reproduced: {settings.model_name} version 1 differs: f1 0.5 -> "), last
    assert "accuracy" not in last  # only what differs is named
    assert _versions(settings) == ["1"]


def test_a_version_that_is_not_registered_is_named(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reproduce.main(["--version", "99"]) == reproduce.EXIT_CANNOT
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: reproduce: {settings.model_name} has no version 99 in the registry")


@pytest.mark.parametrize("recorded_as", [
    NOT_IN_AN_IMAGE,                 # registered by dvc repro
    "ct-train:abc",                  # no image id recorded
    "ct-train:abc@sha256:" + "0" * 64,  # an image this machine does not have
])
def test_a_step_whose_recorded_image_is_not_here_runs_locally(recorded_as: str) -> None:
    assert reproduce.image_id(recorded_as) is None
