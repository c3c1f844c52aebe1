"""The first dataset: real tables that PyPI packages ship, so the stack works offline.

``python -m pipeline_steps.datasets --name breast_cancer --out data/breast_cancer.csv``
writes one out as CSV. scikit-learn's tables get a ``target`` column and column
names safe for XGBoost (no spaces or brackets). ``penguins`` (palmerpenguins) is
written exactly as the package ships it: the class is the text column
``species``, ``island`` and ``sex`` are text, and some values are missing (NA).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline_steps.cli import exit_process, make_parser, run_cli
from pipeline_steps.data import md5_hex
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings

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


def export(name: str, out: Path, target: str) -> dict[str, Any]:
    """Write the dataset to ``out`` and say what was written."""
    data = builtin_csv(name, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return {"dataset": name, "path": str(out), "md5": md5_hex(data), "bytes": len(data)}


def _handle(args: Any, settings: Settings) -> dict[str, Any]:
    return export(args.name or settings.dataset_name, Path(args.out), settings.target_column)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser("datasets", __doc__.splitlines()[0])
    parser.add_argument("--name", choices=sorted(BUILTIN), help="default: DATASET_NAME")
    parser.add_argument("--out", required=True, help="CSV file to write")
    return run_cli(parser, _handle, argv)


if __name__ == "__main__":
    exit_process(main())
