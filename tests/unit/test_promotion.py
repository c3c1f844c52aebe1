"""From Staging to Production, on real S3 and a real MLflow server.

evaluate scores the Staging model (loaded from the registry by its alias) on the
new model's own test rows, or says why it cannot; promote moves the production
alias to an approved version; rollback moves it back to the one approved before.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from PIL import Image

from pipeline_steps.steps import evaluate
from pipeline_steps.modelling import production
from pipeline_steps.steps import promote, rollback
from pipeline_steps.steps import publish_data
from pipeline_steps.services import tracking
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests.unit.pipeline_run import run_steps


@pytest.fixture
def published(settings: Settings, store: Storage) -> dict:
    """The built-in dataset, pushed to the DVC remote with DVC and pointed to."""
    return publish_data.publish(settings, store, builtin_csv("breast_cancer"), "breast_cancer.csv")


def client(settings: Settings) -> mlflow.MlflowClient:
    return tracking.connect(settings)


def alias(settings: Settings, name: str) -> str:
    return client(settings).get_model_version_by_alias(settings.model_name, name).version


def stage(settings: Settings, version: str) -> str:
    return client(settings).get_model_version(settings.model_name, version).current_stage


def test_the_first_model_has_no_champion_to_face(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    run = run_steps(settings, store, run_prefix, data_version=published["md5"])
    assert run.evaluated["champion"] is None
    assert run.evaluated["comparison_uri"] is None
    logged = client(settings).get_run(run.trained["run_id"]).data.metrics
    assert logged["challenger.f1"] == logged["f1"]
    assert not any(name.startswith("champion.") for name in logged)


def test_evaluate_scores_the_staging_model_on_the_new_models_own_test_rows(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    first = run_steps(settings, store, f"{run_prefix}/a", data_version=published["md5"])
    # A weaker challenger on the same data version: same split, a different model.
    weak = dataclasses.replace(settings, xgb_params={"n_estimators": 2, "max_depth": 1})
    second = run_steps(weak, store, f"{run_prefix}/b", data_version=published["md5"], do_register=False)

    champion = second.evaluated["champion"]
    assert champion["version"] == first.registered["version"]
    assert champion["scored"] is True
    # The Staging model scored on these rows gives what it gave on them when it was new.
    assert champion["metrics"] == pytest.approx(first.evaluated["metrics"])
    assert second.evaluated["metrics"] != first.evaluated["metrics"]
    logged = client(settings).get_run(second.trained["run_id"]).data.metrics
    for name, value in second.evaluated["metrics"].items():
        assert logged[f"challenger.{name}"] == pytest.approx(value)
        assert logged[f"champion.{name}"] == pytest.approx(champion["metrics"][name])
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(client(settings).download_artifacts(
            second.trained["run_id"], evaluate.COMPARISON_FILE, tmp)).read_bytes()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 2 * image.size[1] * 0.8  # two panels side by side
    assert store.read_bytes(second.evaluated["comparison_uri"]) == png


def test_a_staging_model_whose_columns_are_gone_cannot_score_and_says_why(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    run_steps(settings, store, f"{run_prefix}/a", data_version=published["md5"])
    table = pd.read_csv(io.BytesIO(builtin_csv("breast_cancer"))).drop(columns=["mean_radius"])
    source = f"{run_prefix}/input/narrower.csv"
    store.write_bytes(source, table.to_csv(index=False).encode())
    second = run_steps(settings, store, f"{run_prefix}/b", input_uri=source, do_register=False)
    champion = second.evaluated["champion"]
    assert champion["scored"] is False
    assert champion["problem"] == "its feature(s) mean_radius are not in this split"
    assert "feature(s) gone: mean_radius" in "; ".join(second.evaluated["schema_changes"])
    logged = client(settings).get_run(second.trained["run_id"]).data.metrics
    assert not any(name.startswith("champion.") for name in logged)


def test_promotion_serves_the_approved_version_and_rollback_returns_to_the_one_before(
    settings: Settings, store: Storage, published: dict, run_prefix: str
) -> None:
    first = run_steps(settings, store, f"{run_prefix}/a", data_version=published["md5"]).registered
    second = run_steps(settings, store, f"{run_prefix}/b", data_version=published["md5"]).registered
    name = settings.model_name

    done = promote.promote(settings, first["version"], "alice")
    assert done["message"] == (f"production now serves {name} version 1 "
                               "(the first Production model; approved by alice)")
    done = promote.promote(settings, second["version"], "bob")
    assert done["message"] == f"production now serves {name} version 2 (was version 1; approved by bob)"
    assert (alias(settings, "production"), stage(settings, "2"), stage(settings, "1")) == (
        "2", "Production", "Archived")
    tags = client(settings).get_model_version(name, "2").tags
    assert tags[production.TAG_PROMOTED_BY] == "bob" and tags["image.promote"] == "ct-test:unit"
    again = promote.promote(settings, "2", "bob")["message"]
    assert again.endswith("already serves production: nothing changed")

    done = rollback.rollback(settings)
    assert done["message"] == f"production now serves {name} version 1 (rolled back from version 2)"
    assert (alias(settings, "production"), stage(settings, "1"), stage(settings, "2")) == (
        "1", "Production", "Archived")
    assert alias(settings, "staging") == "2"  # the Staging model is not touched
    assert rollback.rollback(settings) == {"step": "rollback", "skip_reason": (
        f"nothing to roll back to: {name} version 1 is the only approved version left, and Production "
        "stays as it is")}
    assert alias(settings, "production") == "1"


def test_rollback_without_production_says_so_and_promoting_a_missing_version_fails_clearly(
    settings: Settings,
) -> None:
    assert rollback.rollback(settings) == {
        "step": "rollback", "skip_reason": f"{settings.model_name} has no Production model to roll back"}
    with pytest.raises(PipelineError, match=f"model {settings.model_name} has no version 7"):
        promote.promote(settings, "7", "alice")
