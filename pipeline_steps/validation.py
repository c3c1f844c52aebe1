"""The rules a table must meet to be trained on, as a pandera schema, and their one-line errors.

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

from pipeline_steps import schema
from pipeline_steps.errors import DataValidationError
from pipeline_steps.settings import Settings
from pipeline_steps.text import some

# ISO dates and times (2024-01-31, 2024-01-31T12:00:00), day/month/year dates, clock times.
_DATE_LIKE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|\d{1,2}:\d{2}(:\d{2})?"
)
_DATE_SAMPLE = 200
DATES_RULE = (
    "holds dates or times: name it in DROP_COLUMNS, or add the parts that matter "
    "(year, month, day of week) as numeric columns"
)


def looks_like_dates(column: pd.Series) -> bool:
    """A datetime column, or text whose values (a sample of them) are all dates or times."""
    if ptypes.is_datetime64_any_dtype(column) or isinstance(column.dtype, pd.PeriodDtype):
        return True
    if ptypes.is_numeric_dtype(column) or ptypes.is_bool_dtype(column):
        return False
    sample = column.dropna().head(_DATE_SAMPLE).astype(str).str.strip()
    return bool(len(sample)) and bool(sample.str.fullmatch(_DATE_LIKE).all())


def _target_column(labels: pd.Series) -> pa.Column:
    counts = labels.value_counts()
    checks = [pa.Check(lambda s: len(s) > 0, error="has no values")]
    if ptypes.is_numeric_dtype(labels) and not ptypes.is_bool_dtype(labels):
        checks.append(pa.Check(
            lambda s: s.astype("float64").mod(1).eq(0),
            error="holds fractional values: class labels must be text, booleans or whole "
                  "numbers (a regression target is not supported)",
        ))
    only = f" ({counts.index[0]!r})" if len(counts) == 1 else ""
    checks += [
        pa.Check(lambda s: s.nunique() >= 2, error=f"has a single class{only}; need at least two"),
        pa.Check(
            lambda s: s.map(counts).ge(2),
            error="has a class with a single row; a stratified split needs at least two rows "
                  "per class",
        ),
    ]
    return pa.Column(checks=checks, nullable=False)


def value_rules(frame: pd.DataFrame, target: str, drop_columns: tuple[str, ...]) -> pa.DataFrameSchema:
    """The rules for this table's values: usable class labels, no raw dates.

    ``frame`` is the table with unlabelled and duplicate rows already removed, so
    the class counts are the ones the split will see.
    """
    columns = {
        str(name): pa.Column(checks=pa.Check(lambda s: not looks_like_dates(s), error=DATES_RULE),
                             nullable=True)
        for name in frame.columns
        if name != target and name not in drop_columns
    }
    return pa.DataFrameSchema({target: _target_column(frame[target]), **columns})


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
    """A table that can be trained on: its usable columns, and the schema a model will keep."""

    frame: pd.DataFrame
    schema: schema.TableSchema


def clean(
    frame: pd.DataFrame,
    target: str,
    name: str,
    *,
    drop_columns: tuple[str, ...] = (),
    positive_class: str | None = None,
    positive_class_required: bool = False,
) -> CleanTable:
    """Drop unlabelled and duplicate rows, check the rules, and keep the usable columns.

    Labels stay the user's own (text, booleans or whole numbers); the schema says
    which code each class gets. Dropped columns (empty, constant, row ids, and
    DROP_COLUMNS) are left out of the frame and listed in the schema.
    """
    check(shape_rules(target), frame, target, name)
    frame = without_duplicate_rows(frame.dropna(subset=[target])).reset_index(drop=True)
    check(value_rules(frame, target, drop_columns), frame, target, name)
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
    return CleanTable(frame=frame, schema=table_schema)


def clean_for(settings: Settings, frame: pd.DataFrame, name: str) -> CleanTable:
    """:func:`clean` with the deployment's settings: what prepare and publish both check."""
    return clean(
        frame, settings.target_column, name,
        drop_columns=settings.drop_columns,
        positive_class=settings.positive_class,
        positive_class_required=settings.quality_metric == "f1",
    )
