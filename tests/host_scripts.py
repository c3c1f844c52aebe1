"""The stack's host-side Python scripts (infra/scripts, images/layers.py), importable by tests.

They are scripts, not a package: `make run` starts infra/scripts/airflow_client.py by path,
images/lib.sh and the builder stage run images/layers.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "infra" / "scripts"


def load(name: str, folder: Path = SCRIPTS) -> ModuleType:
    """<folder>/<name>.py (infra/scripts by default) as a module."""
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


airflow_client = load("airflow_client")
image_layers = load("layers", REPO / "images")
