"""The first dataset: real tables that scikit-learn ships, so the stack works offline.

``python -m pipeline_steps.datasets --name breast_cancer --out data/breast_cancer.csv``
writes one out as CSV with a ``target`` column. Column names are made safe for
XGBoost feature names (no spaces or brackets).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.data import md5_hex
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings

BUILTIN = {
    "breast_cancer": "load_breast_cancer",  # binary, 569 rows, 30 features
    "wine": "load_wine",  # 3 classes, 178 rows, 13 features
    "iris": "load_iris",  # 3 classes, 150 rows, 4 features
}


def _safe(column: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower()


def builtin_csv(name: str, target: str = "target") -> bytes:
    """The named bundled dataset as CSV bytes (deterministic: same bytes every time)."""
    if name not in BUILTIN:
        raise PipelineError(f"unknown built-in dataset {name!r}; choose from {', '.join(BUILTIN)}")
    from sklearn import datasets  # pylint: disable=import-outside-toplevel

    bunch = getattr(datasets, BUILTIN[name])(as_frame=True)
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
    raise SystemExit(main())
