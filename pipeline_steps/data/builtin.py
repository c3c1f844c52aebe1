"""The first dataset: real tables that PyPI packages ship, so the stack works offline.

The ``dataset`` step writes one out as CSV (the local pipeline's first stage);
``publish_data`` publishes one when the stack starts. scikit-learn's tables get a ``target`` column and column
names safe for XGBoost (no spaces or brackets). ``penguins`` (palmerpenguins) is
written exactly as the package ships it: the class is the text column
``species``, ``island`` and ``sex`` are text, and some values are missing (NA).
"""

from __future__ import annotations

import re

from pipeline_steps.errors import PipelineError

SKLEARN_TABLES = {
    "breast_cancer": "load_breast_cancer",  # binary, 569 rows, 30 features
    "wine": "load_wine",  # 3 classes, 178 rows, 13 features
    "iris": "load_iris",  # 3 classes, 150 rows, 4 features
}
# 3 text classes (species), 344 rows, text categories (island, sex), gaps; TARGET_COLUMN=species.
PENGUINS = "penguins"
BUILTIN = (*SKLEARN_TABLES, PENGUINS)


def _safe(column: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower()


def builtin_csv(name: str, target: str = "target") -> bytes:
    """The named bundled dataset as CSV bytes (deterministic: same bytes every time)."""
    if name not in BUILTIN:
        raise PipelineError(f"unknown built-in dataset {name!r}; choose from {', '.join(BUILTIN)}")
    if name == PENGUINS:
        from importlib.resources import files  # pylint: disable=import-outside-toplevel

        return files("palmerpenguins").joinpath("data", "penguins.csv").read_bytes()
    from sklearn import datasets  # pylint: disable=import-outside-toplevel

    bunch = getattr(datasets, SKLEARN_TABLES[name])(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: target if c == "target" else _safe(str(c)))
    return frame.to_csv(index=False, float_format="%.10g").encode()
