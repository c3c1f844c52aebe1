"""The training schema: the columns a model reads, their kinds, and the classes it answers in.

Inferred once, in prepare, from the validated table; saved in prepare.json, logged
to the run (``schema.json``) and carried inside the model, so training, evaluation
and a model loaded back from the registry turn a raw frame of the user's columns
into model input the same way (:meth:`TableSchema.model_input`).

Kinds, decided once for each column when the schema is inferred: ``numeric``
(numbers, missing values stay missing), ``boolean`` (true/false, fed as 1/0),
``categorical`` (text, fed to XGBoost as a pandas ``category`` with the levels
seen in training, in sorted order) and ``datetime`` (dates and times, fed as the
numeric parts recorded with the feature: year, month, day, day of week, and the
hour where the values carry a time). A level never seen in training is turned
into a missing value before prediction: XGBoost 3 raises on an unknown category,
and a missing value is what its trees are built to route.

Training input must hold what its kinds say (:meth:`TableSchema.model_input`
refuses a number column holding text); scoring input may not
(:meth:`TableSchema.scoring_input` says which rows cannot be scored, and why).

Classes are the target's distinct values in sorted order (numbers numerically,
text alphabetically, ``False`` before ``True``); class ``i`` is code ``i`` for XGBoost.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from pipeline_steps.errors import DataValidationError
from pipeline_steps.text import some

NUMERIC, BOOLEAN, CATEGORICAL, DATETIME = "numeric", "boolean", "categorical", "datetime"
# The numeric parts a date column is fed as; "hour" only where its values carry a time of day.
DATE_PARTS = ("year", "month", "day", "dayofweek")
TIME_PART = "hour"
Label = str | int | bool
# Up to this many rows, a frame of numbers only is converted in one go (pipeline_steps/serving's requests).
_SMALL_FRAME_ROWS = 10_000
# A text column with a different value in each of at least this many rows reads as a row id.
ID_MIN_ROWS = 20
_BOOLEAN_VALUES = {True, False}

log = logging.getLogger(__name__)


def as_label(value: Any) -> Label:
    """A class label as JSON and MLflow keep it: bool, int for whole numbers, else text."""
    if isinstance(value, bool) or ptypes.is_bool(value):
        return bool(value)
    if ptypes.is_number(value) and float(value).is_integer():
        return int(value)
    if ptypes.is_number(value):
        return float(value)  # a plain float, not numpy's (its repr reads np.float64(0.5))
    return str(value)


def as_labels(values: pd.Series) -> pd.Series:
    """:func:`as_label` of every value, worked out once per distinct value (a million rows, two classes)."""
    return values.map({value: as_label(value) for value in values.unique()})


# Why a column the user named in DROP_COLUMNS was dropped; `make reproduce` reads the
# setting back from the schema of a registered version by it.
DROPPED_BY_SETTING = "named in DROP_COLUMNS"


@dataclass(frozen=True)
class Feature:
    """One input column: its kind; for text columns the levels seen in training, for dates their parts."""

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()

    @property
    def model_columns(self) -> list[str]:
        """The columns the model reads for this feature: itself, or one per date part."""
        return [f"{self.name}.{part}" for part in self.parts] if self.kind == DATETIME else [self.name]


@dataclass(frozen=True)
class TableSchema:
    """What a model was trained on; the contract a frame must meet to be scored by it."""

    target: str
    classes: tuple[Label, ...]
    features: tuple[Feature, ...]
    positive_class: Label | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        """The input columns, in the order the model reads them."""
        return [f.name for f in self.features]

    @property
    def positive_code(self) -> int | None:
        """The code of the positive class of a binary task."""
        return None if self.positive_class is None else self.classes.index(self.positive_class)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (prepare.json, schema.json, the model's MLflow metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TableSchema:
        """Read back what :meth:`to_dict` wrote."""
        return cls(
            target=raw["target"],
            classes=tuple(raw["classes"]),
            features=tuple(Feature(f["name"], f["kind"], tuple(f["levels"]), tuple(f.get("parts") or ()))
                           for f in raw["features"]),
            positive_class=raw.get("positive_class"),
            dropped=dict(raw.get("dropped") or {}),
            notes=tuple(raw.get("notes") or ()),
        )

    def encode_labels(self, labels: pd.Series) -> pd.Series:
        """Class labels as codes 0..k-1; a label the model has no class for is an error."""
        codes = {label: code for code, label in enumerate(self.classes)}
        normalised = as_labels(labels)
        encoded = normalised.map(codes)
        unknown = sorted({str(v) for v in normalised[encoded.isna()].unique()})
        if unknown:
            raise DataValidationError(
                f"target column {self.target!r} holds labels the model has no class for: "
                f"{some(unknown)} (its classes: {some(self.classes)})"
            )
        return encoded.astype("int64")

    def decode(self, codes: Any) -> pd.Series:
        """Codes back to the user's labels."""
        return pd.Series([self.classes[int(c)] for c in codes])

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input from a frame that passed validation (extra columns are ignored).

        A value its column's kind cannot hold (text in a number column, a date that does not
        parse) is an error naming the column: training data never carries one.
        """
        inputs, problems = self._inputs(frame)
        for feature, bad in problems.items():
            if bad.any():
                raise DataValidationError(
                    f"column {feature.name!r} must hold {_KIND_WORDS[feature.kind][0]}, as in training; "
                    f"{int(bad.sum())} value(s) do not: {some(_examples(frame[feature.name], bad))}"
                )
        return inputs

    def scoring_input(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """The model's input from a table to score, and for each row why it cannot be scored (or None).

        A value its column's kind cannot hold makes that row unusable rather than the
        whole table: batch scoring answers every other row and says which it did not.
        """
        inputs, problems = self._inputs(frame)
        reasons: list[str | None] = [None] * len(frame)
        for feature, bad in problems.items():
            values = frame[feature.name].to_numpy()
            for row in np.flatnonzero(bad.to_numpy()):
                said = (f"column {feature.name!r} holds {str(values[row])!r}, "
                        f"not {_KIND_WORDS[feature.kind][1]}")
                reasons[row] = said if reasons[row] is None else f"{reasons[row]}; {said}"
        return inputs, pd.Series(reasons, index=frame.index, dtype=object)

    def analysis_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The features as a drift test compares them: numbers (a value its kind cannot hold is
        missing), date parts, and text as text, every level kept (a new one is a change to see)."""
        return self._inputs(frame, keep_levels=True)[0]

    def _inputs(self, frame: pd.DataFrame,
                keep_levels: bool = False) -> tuple[pd.DataFrame, dict[Feature, pd.Series]]:
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise DataValidationError(
                f"the frame lacks column(s) the model was trained on: {some(missing)}"
            )
        names = self.feature_names
        if len(frame) <= _SMALL_FRAME_ROWS and all(f.kind == NUMERIC for f in self.features) \
                and all(ptypes.is_numeric_dtype(dtype) for dtype in frame[names].dtypes):
            # A request's few rows, all numbers: one conversion, not one per column (it copies,
            # which only a large table would feel).
            return frame[names].astype("float64"), {}
        columns, problems = [], {}
        for feature in self.features:
            values, bad = _coerce(frame[feature.name], feature, keep_levels)
            columns.append(values)
            if bad is not None:
                problems[feature] = bad
        # Joined, not built from a dict: that consolidates the float columns into one new
        # block, a copy of most of the table; concat keeps a float64 column shared with
        # ``frame`` (copy-on-write keeps both safe).
        return pd.concat(columns, axis=1), problems


# What a kind's values are, in a message: (many, one). Only these two kinds can refuse a value.
_KIND_WORDS = {NUMERIC: ("numbers", "a number"), DATETIME: ("dates or times", "a date or time")}


def _examples(column: pd.Series, bad: pd.Series) -> list[str]:
    return [repr(v) for v in pd.unique(column[bad].astype(str))[:3]]


def parse_datetimes(column: pd.Series) -> pd.Series:
    """Dates and times as timestamps in UTC, without a time zone; what does not parse is NaT.

    ISO 8601 first, in one vectorised pass; the values that failed it (day/month/year
    dates, say) are tried one by one, which is slow but only for them. Without a time
    zone because MLflow's model signature accepts none.
    """
    if ptypes.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column, utc=True)
    else:
        text = column.astype("string").str.strip()
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        parsed = parsed.astype("datetime64[ns, UTC]")
        retry = parsed.isna() & text.notna()
        if retry.any():
            parsed[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def date_parts(stamps: pd.Series) -> tuple[str, ...]:
    """The parts a date column is fed as: with the hour when any of its values has a time of day."""
    present = stamps.dropna()
    has_time = bool(len(present)) and bool((present != present.dt.normalize()).any())
    return (*DATE_PARTS, TIME_PART) if has_time else DATE_PARTS


def _coerce(column: pd.Series, feature: Feature,
            keep_levels: bool = False) -> tuple[pd.Series | pd.DataFrame, pd.Series | None]:
    """The model's column(s) for one feature, and which present values its kind cannot hold (None: all can).

    ``keep_levels``: text stays text with every level, not the model's categories.
    """
    if feature.kind == CATEGORICAL:
        return _categories(column, feature, keep_levels), None
    if feature.kind == BOOLEAN:
        values = column.map(lambda v: float(v) if v in _BOOLEAN_VALUES else float("nan")).astype("float64")
        return values.rename(feature.name), None
    if feature.kind == DATETIME:
        stamps = parse_datetimes(column)
        parts = pd.concat([getattr(stamps.dt, part).astype("float64").rename(f"{feature.name}.{part}")
                           for part in feature.parts], axis=1)
        return parts, stamps.isna() & column.notna()
    return _numbers(column, feature.name)


def _categories(column: pd.Series, feature: Feature, keep_levels: bool) -> pd.Series:
    """Text as the model's categories (a level never seen in training is missing), or as text."""
    text = column.astype("string")
    if keep_levels:
        return text.astype(object).where(text.notna(), None).rename(feature.name)
    seen = text.isin(feature.levels) | text.isna()
    if not seen.all():
        unseen = sorted(set(text[~seen]))
        log.warning(
            "column %r: %d value(s) not seen in training, scored as missing: %s",
            feature.name, int((~seen).sum()), some(unseen),
        )
    return text.where(seen).astype(pd.CategoricalDtype(categories=list(feature.levels))).rename(feature.name)


def _numbers(column: pd.Series, name: str) -> tuple[pd.Series, pd.Series | None]:
    """A number column as float64, and which present values are not numbers (None: a numeric dtype)."""
    if column.dtype == "float64":
        return column.rename(name), None  # to_numeric would copy it
    if ptypes.is_numeric_dtype(column) or ptypes.is_bool_dtype(column):
        return column.astype("float64").rename(name), None
    numbers = pd.to_numeric(column, errors="coerce").astype("float64")
    return numbers.rename(name), numbers.isna() & column.notna()


def kind_of(column: pd.Series) -> str:
    """Numeric, boolean, datetime or categorical, from the column's (already typed) values."""
    if ptypes.is_datetime64_any_dtype(column):
        return DATETIME
    if ptypes.is_bool_dtype(column):
        return BOOLEAN
    if ptypes.is_numeric_dtype(column):
        return NUMERIC
    present = column.dropna()
    if len(present) and all(isinstance(v, bool) for v in present):
        return BOOLEAN  # true/false with gaps: pandas reads it as object
    return CATEGORICAL


def _drop_reason(column: pd.Series, kind: str, rows: int) -> str | None:
    present = column.dropna()
    if present.empty:
        return "entirely empty"
    if present.eq(present.iloc[0]).all():  # not nunique(): hashing a million floats takes 70 ms a column
        return f"constant ({as_label(present.iloc[0])!r} in every row)"
    if kind == CATEGORICAL and present.nunique() == rows >= ID_MIN_ROWS:
        return "a different text in every row, like a row id (name it in DROP_COLUMNS to silence this)"
    return None


def _positive_class(
    classes: list[Label], wanted: str | None, target: str, required: bool
) -> tuple[Label | None, str | None]:
    """The class binary precision, recall and F1 are measured on, and a note when it was guessed."""
    if len(classes) != 2:
        return None, None
    if wanted is not None:
        for label in classes:
            if str(label) == wanted or (isinstance(label, bool) and str(label).lower() == wanted.lower()):
                return label, None
        raise DataValidationError(
            f"POSITIVE_CLASS={wanted!r} is not a class of {target!r} "
            f"(its classes: {', '.join(map(str, classes))})"
        )
    if not isinstance(classes[1], str):
        return classes[1], None  # 1 for 0/1 labels, True for booleans
    if required:
        raise DataValidationError(
            f"target column {target!r} has the text labels {classes[0]!r} and {classes[1]!r}: "
            "set POSITIVE_CLASS to the one f1 is measured on (or QUALITY_METRIC=f1_macro)"
        )
    return classes[1], (f"POSITIVE_CLASS is not set: precision, recall and f1 are measured on "
                        f"{classes[1]!r}, the last class in sorted order")


def infer(
    frame: pd.DataFrame,
    target: str,
    *,
    drop_columns: tuple[str, ...] = (),
    positive_class: str | None = None,
    positive_class_required: bool = False,
) -> TableSchema:
    """The schema of a validated table: usable features, dropped columns with why, classes.

    ``positive_class_required``: the gate metric is binary F1, so text labels need
    POSITIVE_CLASS; guessing it would gate on the wrong class without a word.
    """
    classes = sorted({as_label(v) for v in frame[target].dropna().unique()}, key=_sort_key)
    features, dropped, notes = [], {}, []
    for name in frame.columns:
        if name == target:
            continue
        column = frame[name]
        kind = kind_of(column)
        reason = DROPPED_BY_SETTING if name in drop_columns else _drop_reason(column, kind, len(frame))
        if reason:
            dropped[str(name)] = reason
            continue
        looks_like_id = ptypes.is_integer_dtype(column) and column.is_unique and len(frame) >= ID_MIN_ROWS
        if kind == NUMERIC and looks_like_id:
            notes.append(f"column {name!r} has a different whole number in every row: "
                         "if it is a row id, name it in DROP_COLUMNS")
        levels = tuple(sorted({str(v) for v in column.dropna().unique()})) if kind == CATEGORICAL else ()
        parts = date_parts(column) if kind == DATETIME else ()
        features.append(Feature(str(name), kind, levels, parts))
    notes += [f"column {name!r} dropped: {why}" for name, why in dropped.items()]
    notes += [f"DROP_COLUMNS names {name!r}, which the table does not have"
              for name in drop_columns if name not in frame.columns]
    positive, guessed = _positive_class(classes, positive_class, target, positive_class_required)
    notes += [guessed] if guessed else []
    if not features:
        raise DataValidationError(
            f"no usable feature column besides {target!r}: "
            + "; ".join(f"{name} is {why}" for name, why in dropped.items())
        )
    return TableSchema(
        target=target,
        classes=tuple(classes),
        features=tuple(features),
        positive_class=positive,
        dropped=dropped,
        notes=tuple(notes),
    )


def _sort_key(label: Label) -> tuple[int, Any]:
    # Numbers (and booleans) numerically, then text alphabetically; mixed tables stay ordered.
    return (1, label) if isinstance(label, str) else (0, int(label))


def differences(old: TableSchema, new: TableSchema) -> list[str]:
    """What changed from the schema ``old`` was trained on to ``new``, one phrase per change."""
    old_kinds = {f.name: f.kind for f in old.features}
    new_kinds = {f.name: f.kind for f in new.features}
    changes = []
    if gone := [n for n in old_kinds if n not in new_kinds]:
        changes.append(f"feature(s) gone: {some(gone)}")
    if added := [n for n in new_kinds if n not in old_kinds]:
        changes.append(f"new feature(s): {some(added)}")
    changes += [f"{n} changed kind: {old_kinds[n]} -> {new_kinds[n]}"
                for n in new_kinds if n in old_kinds and old_kinds[n] != new_kinds[n]]
    if new_classes := [str(c) for c in new.classes if c not in old.classes]:
        changes.append(f"new class(es): {some(new_classes)}")
    if lost_classes := [str(c) for c in old.classes if c not in new.classes]:
        changes.append(f"class(es) gone: {some(lost_classes)}")
    return changes
