"""The stack's host-side Python scripts (infra/scripts), importable by tests.

They are scripts, not a package: `make run` starts infra/scripts/airflow_client.py by path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "infra" / "scripts"


def load(name: str) -> ModuleType:
    """infra/scripts/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


airflow_client = load("airflow_client")
