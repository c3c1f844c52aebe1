"""Tables as users have them: what is trained on, what is dropped and why, what is refused.

Pure functions on small frames, in process: the validation rules, the inferred
schema and the model that answers in the user's labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_steps.modelling import model as model_module
from pipeline_steps.errors import DataValidationError
from pipeline_steps.data.schema import BOOLEAN, CATEGORICAL, NUMERIC, TableSchema, differences
from pipeline_steps.text import some
from pipeline_steps.data.validation import clean, without_duplicate_rows

ROWS = 40


def table(**columns: list) -> pd.DataFrame:
    """A frame of ROWS rows: a numeric feature, a two-class text label, and the given columns."""
    base = {"amount": [float(i % 7) for i in range(ROWS)], "label": ["no", "yes"] * (ROWS // 2)}
    return pd.DataFrame({**base, **columns})


def test_text_labels_keep_their_values_and_get_codes_in_sorted_order() -> None:
    frame = table(label=["setosa", "virginica", "versicolor", "setosa"] * (ROWS // 4))
    schema = clean(frame, "label", "t.csv").schema
    assert schema.classes == ("setosa", "versicolor", "virginica")
    assert schema.encode_labels(pd.Series(["virginica", "setosa"])).tolist() == [2, 0]
    assert schema.decode([1, 2]).tolist() == ["versicolor", "virginica"]


def test_boolean_and_integer_targets_are_classes_too() -> None:
    booleans = clean(table(label=[True, False] * (ROWS // 2)), "label", "t.csv").schema
    assert booleans.classes == (False, True)
    assert booleans.positive_class is True
    numbers = clean(table(label=[3, 10, 2, 3] * (ROWS // 4)), "label", "t.csv").schema
    assert numbers.classes == (2, 3, 10)


def test_each_column_gets_a_kind_and_text_columns_keep_their_levels() -> None:
    frame = table(
        plan=["gold", "basic", None, "basic"] * (ROWS // 4),
        active=[True, False] * (ROWS // 2),
        visits=[1, 2, 3, None] * (ROWS // 4),
    )
    schema = clean(frame, "label", "t.csv", positive_class="yes").schema
    kinds = {f.name: (f.kind, f.levels) for f in schema.features}
    assert kinds == {
        "amount": (NUMERIC, ()), "plan": (CATEGORICAL, ("basic", "gold")),
        "active": (BOOLEAN, ()), "visits": (NUMERIC, ()),
    }
    assert schema.positive_class == "yes"


def test_empty_constant_and_named_columns_are_dropped_with_the_reason() -> None:
    frame = table(
        blank=[None] * ROWS, country=["NL"] * ROWS,
        notes=[f"free text {i % 3}" for i in range(ROWS)],
    )
    cleaned = clean(frame, "label", "t.csv", drop_columns=("notes",), positive_class="yes")
    assert cleaned.schema.dropped == {
        "blank": "entirely empty", "country": "constant ('NL' in every row)",
        "notes": "named in DROP_COLUMNS",
    }
    assert list(cleaned.frame.columns) == ["amount", "label"]
    assert "column 'country' dropped: constant ('NL' in every row)" in cleaned.schema.notes


def test_a_column_like_a_row_id_is_reported() -> None:
    frame = table(customer=[f"C-{i:04d}" for i in range(ROWS)], row=list(range(ROWS)))
    schema = clean(frame, "label", "t.csv", positive_class="yes").schema
    assert schema.dropped["customer"].startswith("a different text in every row, like a row id")
    assert "row" in schema.feature_names
    assert any(note.startswith("column 'row' has a different whole number in every row")
               for note in schema.notes)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (table(signed_up=["2024-01-31", "2024-02-01 10:30:00"] * (ROWS // 2 - 1) + ["2024-13-45", "soon"]),
         "column 'signed_up' in t.csv holds dates or times, but 2 value(s) are not: '2024-13-45', 'soon'"),
        (table(amount=[str(i) for i in range(ROWS - 3)] + ["oops"] * 3),
         "column 'amount' in t.csv holds numbers, but 3 value(s) are not: 'oops'; fix those values, or "
         "set INVALID_NUMBERS=missing"),
        (table(amount=[1.0, float("inf")] * (ROWS // 2)),
         "column 'amount' in t.csv holds infinite values (inf)"),
        (table(label=["yes"] * ROWS), "target column 'label' in t.csv has a single class ('yes')"),
        (table(label=[1] * ROWS), "target column 'label' in t.csv has a single class (1); need at least two"),
        (table(label=["no", "yes"] * (ROWS // 2 - 1) + ["no", "maybe"]),
         "target column 'label' in t.csv has a class with a single row; a stratified split needs "
         "at least two rows per class: 'maybe'"),
        (table(label=[0.5, 1.0] * (ROWS // 2)),
         "target column 'label' in t.csv holds fractional values: class labels must be text, "
         "booleans or whole numbers (a regression target is not supported): 0.5"),
        (table(label=[None] * ROWS), "target column 'label' in t.csv has no values"),
        (pd.DataFrame({"label": ["a", "b"] * 3}), "t.csv has no feature columns besides 'label'"),
        (table(amount=[1.0] * ROWS, customer=[f"C{i}" for i in range(ROWS)]),
         "t.csv: no usable feature column besides 'label': amount is constant"),
    ],
    ids=["unparseable-date", "text-in-a-number-column", "infinite-number", "one-class", "one-numbered-class",
         "single-row-class",
         "fractional-label", "no-labels", "no-features", "all-features-dropped"],
)
def test_a_table_that_cannot_be_trained_on_is_refused_in_one_line(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataValidationError) as raised:
        clean(frame, "label", "t.csv", positive_class="yes")
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_duplicate_rows_are_dropped_as_drop_duplicates_drops_them() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "x": rng.integers(0, 3, 400).astype("float64"),
        "text": pd.Series(rng.choice(["a", "b", None], 400), dtype="string"),
        "n": rng.integers(0, 2, 400),
    }, index=np.repeat(np.arange(200), 2))  # not a unique index: rows are kept by position
    frame.loc[frame.index[::5], "x"] = np.nan
    frame.iloc[1, 0], frame.iloc[2, 0] = -0.0, 0.0  # equal values that hash apart
    kept = without_duplicate_rows(frame)
    expected = frame.drop_duplicates()
    assert len(kept) < len(frame)
    pd.testing.assert_frame_equal(kept, expected)


def test_text_labels_need_a_positive_class_when_the_gate_is_binary_f1() -> None:
    with pytest.raises(DataValidationError, match=r"^t.csv: target column 'label' has the text labels "
                       r"'no' and 'yes': set POSITIVE_CLASS"):
        clean(table(), "label", "t.csv", positive_class_required=True)
    with pytest.raises(DataValidationError, match=r"POSITIVE_CLASS='Yes' is not a class of 'label' "
                       r"\(its classes: no, yes\)"):
        clean(table(), "label", "t.csv", positive_class="Yes")
    guessed = clean(table(), "label", "t.csv").schema
    assert guessed.positive_class == "yes"
    assert any("POSITIVE_CLASS is not set" in note for note in guessed.notes)


def test_the_model_answers_in_labels_and_scores_an_unseen_level_as_missing() -> None:
    frame = table(plan=["gold", "basic"] * (ROWS // 2))
    frame["label"] = np.where(frame["plan"] == "gold", "churned", "stayed")
    cleaned = clean(frame, "label", "t.csv", positive_class="churned")
    fitted = model_module.fit(cleaned.frame, cleaned.schema, {"n_estimators": 5}, seed=1)

    raw = pd.DataFrame({"plan": ["gold", "basic", "platinum", None], "amount": [1, 2, 3, 4],
                        "ignored": ["x"] * 4})
    predicted = fitted.predict(raw)
    assert predicted.tolist()[:2] == ["churned", "stayed"]
    assert set(predicted) <= {"churned", "stayed"}
    assert fitted.schema.model_input(raw)["plan"].isna().tolist() == [False, False, True, True]


def test_the_model_input_shares_float_columns_with_the_table_rather_than_copying_them() -> None:
    frame = clean(table(), "label", "t.csv", positive_class="yes").frame
    schema = clean(table(), "label", "t.csv", positive_class="yes").schema
    assert np.shares_memory(schema.model_input(frame)["amount"].to_numpy(), frame["amount"].to_numpy())


def test_a_frame_without_a_trained_column_is_named() -> None:
    schema = clean(table(), "label", "t.csv", positive_class="yes").schema
    with pytest.raises(DataValidationError, match="lacks column.* the model was trained on: amount"):
        schema.model_input(pd.DataFrame({"other": [1]}))


def test_schema_changes_are_listed_one_by_one() -> None:
    old = clean(table(plan=["a", "b"] * (ROWS // 2), age=[1, 2] * (ROWS // 2)), "label", "t.csv",
                positive_class="yes").schema
    new = clean(table(plan=[1, 2] * (ROWS // 2), label=["no", "yes", "maybe", "no"] * (ROWS // 4)),
                "label", "t.csv", positive_class="yes").schema
    assert differences(old, new) == [
        "feature(s) gone: age", "plan changed kind: categorical -> numeric", "new class(es): maybe",
    ]
    assert differences(new, TableSchema.from_dict(new.to_dict())) == []


def test_a_renamed_wide_table_is_summed_up_in_a_line_not_listed_column_by_column() -> None:
    wide = {f"mean_{i}": [float(i), float(i + 1)] * (ROWS // 2) for i in range(30)}
    old = clean(table(**wide), "label", "t.csv", positive_class="yes").schema
    renamed = {name.replace("_", " "): values for name, values in wide.items()}
    new = clean(table(**renamed), "label", "t.csv", positive_class="yes").schema
    assert differences(old, new) == ["feature(s) gone: mean_0, mean_1, mean_2, mean_3, mean_4 and 25 more",
                                     "new feature(s): mean 0, mean 1, mean 2, mean 3, mean 4 and 25 more"]
    assert some("abcdef") == "a, b, c, d, e, f"  # "and 1 more" would be no shorter than the name
    assert some("abcdefg") == "a, b, c, d, e and 2 more"
