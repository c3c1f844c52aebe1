"""Write a built-in table out as CSV: the local pipeline's first data version (``dvc repro``'s first stage).

``python -m pipeline_steps dataset --name breast_cancer --out data/breast_cancer.csv``
writes the table as its package ships it (pipeline_steps/data/builtin.py); the
result says where, its md5 (its DVC data version) and its size.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.data.builtin import BUILTIN, builtin_csv
from pipeline_steps.data.tables import md5_hex
from pipeline_steps.settings import Settings


def export(name: str, out: Path, target: str) -> dict[str, Any]:
    """Write the dataset to ``out`` and say what was written."""
    data = builtin_csv(name, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return {"dataset": name, "path": str(out), "md5": md5_hex(data), "bytes": len(data)}


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return export(args.name or settings.dataset_name, Path(args.out), settings.target_column)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--name", choices=sorted(BUILTIN), help="default: DATASET_NAME")
    parser.add_argument("--out", required=True, help="CSV file to write")
    return run_cli(parser, _handle, argv)
