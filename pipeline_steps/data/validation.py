"""The rules a table must meet to be trained on, as a pandera schema, and their one-line errors.

Before the rules, each feature column a file gave as text gets the kind its values
are (:func:`typed`): numbers with a stray word in them are refused (or, with
INVALID_NUMBERS=missing, made missing and counted), dates become timestamps.

The schema is built for each table (its target, its columns, its class counts)
and checked before anything is written. pandera reports the first rule broken;
:func:`validate` turns that into one line naming the file, the column and the
rule, e.g. ``target column 'income' in s3://.../adult.csv holds fractional
values (a regression target?): 0.5``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api import types as ptypes
from pandera.errors import SchemaError, SchemaErrorReason

from pipeline_steps.data import rows
from pipeline_steps.data import schema
from pipeline_steps.errors import DataValidationError
from pipeline_steps.data.rows import RowAccount
from pipeline_steps.settings import INVALID_NUMBERS, Settings
from pipeline_steps.text import some

# ISO dates and times (2024-01-31, 2024-01-31T12:00:00) and day/month/year dates. Not a clock
# time alone: it would be read as a time on the day it is parsed, a different date every day.
_DATE_LIKE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?"
)
_SAMPLE = 200
# A text column in which at least this share of a sample of its values are numbers (or dates) is a
# number (or date) column with some bad values (a typo, "n/a"), not a column of categories.
KIND_SHARE = 0.9
# INVALID_NUMBERS: what text in a number column does. refuse: the table is refused, naming the
# column; missing: those values become missing values, counted (rows.coerced.<column>).
REFUSE, MISSING = INVALID_NUMBERS


def _sample(column: pd.Series) -> pd.Series:
    """Up to _SAMPLE present values spread over the whole column, as stripped text."""
    present = column.dropna()
    step = max(1, len(present) // _SAMPLE)
    return present.iloc[::step].head(_SAMPLE).astype(str).str.strip()


def looks_like_dates(column: pd.Series) -> bool:
    """Text of which at least KIND_SHARE of a sample are written as dates or times."""
    sample = _sample(column)
    return bool(len(sample)) and sample.str.fullmatch(_DATE_LIKE).mean() >= KIND_SHARE


def looks_like_numbers(column: pd.Series) -> bool:
    """Text of which at least KIND_SHARE of a sample parses as numbers."""
    sample = _sample(column)
    return bool(len(sample)) and pd.to_numeric(sample, errors="coerce").notna().mean() >= KIND_SHARE


def _text_columns(frame: pd.DataFrame, skip: set[str]) -> list[str]:
    return [name for name in frame.columns if name not in skip and not (
        ptypes.is_numeric_dtype(frame[name]) or ptypes.is_bool_dtype(frame[name])
        or ptypes.is_datetime64_any_dtype(frame[name]))]


def typed(frame: pd.DataFrame, target: str, name: str, *, drop_columns: tuple[str, ...] = (),
          invalid_numbers: str = REFUSE) -> tuple[pd.DataFrame, dict[str, int]]:
    """The feature columns a file gave as text, as the kind their values are; values made missing, by column.

    A CSV column of numbers with one typo in it is read as text, and would otherwise be
    trained on as a category with a level per number. Dates become timestamps (the
    schema feeds their parts); a value that does not parse as a date is refused, and so
    is text in a number column unless INVALID_NUMBERS is ``missing``.
    """
    changed: dict[str, pd.Series] = {}
    coerced: dict[str, int] = {}
    for column in _text_columns(frame, {target, *drop_columns}):
        values = frame[column]
        if looks_like_dates(values):
            stamps = schema.parse_datetimes(values)
            _refuse_bad(values, stamps.isna() & values.notna(), column, name, "dates or times",
                        "a value that is not a date or time cannot be trained on; fix or remove those rows")
            changed[column] = stamps
        elif looks_like_numbers(values):
            numbers = pd.to_numeric(values, errors="coerce").astype("float64")
            bad = numbers.isna() & values.notna()
            if invalid_numbers == REFUSE:
                _refuse_bad(values, bad, column, name, "numbers",
                            "fix those values, or set INVALID_NUMBERS=missing to train on them as missing")
            elif bad.any():
                coerced[column] = int(bad.sum())
            changed[column] = numbers
    return (frame.assign(**changed) if changed else frame), coerced


def _refuse_bad(values: pd.Series, bad: pd.Series, column: str, name: str, kind: str, advice: str) -> None:
    if bad.any():
        examples = ", ".join(repr(v) for v in pd.unique(values[bad].astype(str))[:3])
        raise DataValidationError(f"column {column!r} in {name} holds {kind}, but {int(bad.sum())} "
                                  f"value(s) are not: {examples}; {advice}")


def _target_column(labels: pd.Series) -> pa.Column:
    counts = labels.value_counts()
    checks = [pa.Check(lambda s: len(s) > 0, error="has no values")]
    if ptypes.is_numeric_dtype(labels) and not ptypes.is_bool_dtype(labels):
        checks.append(pa.Check(
            lambda s: s.astype("float64").mod(1).eq(0),
            error="holds fractional values: class labels must be text, booleans or whole "
                  "numbers (a regression target is not supported)",
        ))
    only = f" ({schema.as_label(counts.index[0])!r})" if len(counts) == 1 else ""
    checks += [
        pa.Check(lambda s: s.nunique() >= 2, error=f"has a single class{only}; need at least two"),
        pa.Check(
            lambda s: s.map(counts).ge(2),
            error="has a class with a single row; a stratified split needs at least two rows "
                  "per class",
        ),
    ]
    return pa.Column(checks=checks, nullable=False)


def value_rules(frame: pd.DataFrame, target: str) -> pa.DataFrameSchema:
    """The rules for this table's values: usable class labels, finite numbers.

    ``frame`` is the table with unlabelled (and, when asked, duplicate) rows already
    removed, so the class counts are the ones the split will see.
    """
    finite = pa.Check(lambda s: ~np.isinf(s), error="holds infinite values (inf): make them missing "
                                                     "or finite")
    numbers = {str(name): pa.Column(checks=finite, nullable=True) for name in frame.columns
               if name != target and ptypes.is_float_dtype(frame[name])}
    return pa.DataFrameSchema({target: _target_column(frame[target]), **numbers})


def shape_rules(target: str) -> pa.DataFrameSchema:
    """Checked first: a target column and something besides it, before any value is looked at."""
    return pa.DataFrameSchema(
        {target: pa.Column(required=True, nullable=True)},
        checks=pa.Check(lambda df: len(df.columns) > 1,
                        error=f"has no feature columns besides {target!r}"),
    )


def check(rules: pa.DataFrameSchema, frame: pd.DataFrame, target: str, name: str) -> None:
    """Raise :class:`DataValidationError` naming the file, the column and the first rule broken."""
    try:
        # inplace: the rules coerce nothing, so pandera's defensive copy of the frame (the
        # table's size again, and seconds at a million rows) buys nothing.
        rules.validate(frame, inplace=True)
    except SchemaError as exc:
        raise DataValidationError(_one_line(exc, frame, target, name)) from None


def _one_line(exc: SchemaError, frame: pd.DataFrame, target: str, name: str) -> str:
    if exc.reason_code == SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME:
        return f"target column {target!r} not found in {name} (columns: {some(frame.columns)})"
    rule = getattr(exc.check, "error", None) or str(exc).splitlines()[0]
    column = getattr(exc.schema, "name", None)
    if not isinstance(exc.schema, pa.Column) or column is None:
        return f"{name} {rule}"
    subject = "target column" if column == target else "column"
    examples = ""
    if isinstance(exc.failure_cases, pd.DataFrame):  # a check of each row: name some of the values
        values = exc.failure_cases["failure_case"].drop_duplicates().head(3).tolist()
        examples = ": " + ", ".join(repr(v) for v in values)
    return f"{subject} {column!r} in {name} {rule}{examples}"


def without_duplicate_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame.drop_duplicates()``, the first of each set of equal rows kept, in a fraction of its time.

    drop_duplicates factorizes every column and then the rows (3.4 s for a million
    rows of 36 columns); pandas' row hash takes 0.5 s. Only the rows whose hash
    repeats are then compared exactly, so a hash collision cannot drop a row.
    (pandas hashes -0.0 as 0.0 and every NaN alike, as drop_duplicates compares them.)
    """
    repeated = pd.util.hash_pandas_object(frame, index=False).duplicated(keep=False).to_numpy()
    if not repeated.any():
        return frame
    keep = np.ones(len(frame), dtype=bool)  # by position: the index need not be unique
    keep[np.flatnonzero(repeated)[frame[repeated].duplicated().to_numpy()]] = False
    return frame[keep]


@dataclass(frozen=True)
class CleanTable:
    """A table that can be trained on: its usable columns, the schema a model will keep, and
    how many rows it lost on the way, and why."""

    frame: pd.DataFrame
    schema: schema.TableSchema
    rows: RowAccount


def clean(  # pylint: disable=too-many-arguments  # the settings that shape a table, by name
    frame: pd.DataFrame,
    target: str,
    name: str,
    *,
    drop_columns: tuple[str, ...] = (),
    positive_class: str | None = None,
    positive_class_required: bool = False,
    drop_duplicates: bool = False,
    invalid_numbers: str = REFUSE,
) -> CleanTable:
    """Drop unlabelled rows (and duplicates, when asked), give each column its kind, check the rules,
    keep the usable columns; count every row that goes.

    Identical rows are kept unless ``drop_duplicates``: in a table of categories, or of
    features with few values, a repeated row is another observation, and how often a
    combination occurs is what the model learns. Labels stay the user's own (text,
    booleans or whole numbers); the schema says which code each class gets. Dropped
    columns (empty, constant, row ids, and DROP_COLUMNS) are left out of the frame and
    listed in the schema.
    """
    check(shape_rules(target), frame, target, name)
    labelled = frame.dropna(subset=[target])
    account = RowAccount(len(frame)).drop(rows.UNLABELLED, len(frame) - len(labelled))
    labelled, coerced = typed(labelled, target, name, drop_columns=drop_columns,
                              invalid_numbers=invalid_numbers)
    for column, count in coerced.items():
        account = account.coerce(column, count)
    if drop_duplicates:
        unique = without_duplicate_rows(labelled)
        account = account.drop(rows.DUPLICATE, len(labelled) - len(unique))
        labelled = unique
    frame = labelled.reset_index(drop=True)
    check(value_rules(frame, target), frame, target, name)
    frame = frame.assign(**{target: schema.as_labels(frame[target])})
    try:
        table_schema = schema.infer(
            frame, target, drop_columns=drop_columns, positive_class=positive_class,
            positive_class_required=positive_class_required,
        )
    except DataValidationError as exc:
        raise DataValidationError(f"{name}: {exc}") from None
    columns = [*table_schema.feature_names, target]
    if list(frame.columns) != columns:  # a copy of the table, only when a column goes or moves
        frame = frame[columns]
    return CleanTable(frame=frame, schema=table_schema, rows=account)


def clean_for(settings: Settings, frame: pd.DataFrame, name: str) -> CleanTable:
    """:func:`clean` with the deployment's settings: what prepare and publish both check."""
    return clean(
        frame, settings.target_column, name,
        drop_columns=settings.drop_columns,
        positive_class=settings.positive_class,
        positive_class_required=settings.quality_metric == "f1",
        drop_duplicates=settings.drop_duplicate_rows,
        invalid_numbers=settings.invalid_numbers,
    )
