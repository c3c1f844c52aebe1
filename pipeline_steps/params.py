"""params.yaml: the one set of defaults that the local pipeline, the step images and the DAG share.

DVC reads the file (each stage declares the keys it reads, so `dvc exp run -S`,
`dvc params diff` and `dvc exp show` see them); the steps read it here, through
:func:`pipeline_steps.settings.load_settings`, where an environment variable of
the same setting wins over it. The DAG reads the same file and hands its content
to every step container as ``CT_PARAMS``, because a container started through the
Docker API proxy can mount nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_steps.errors import SettingsError

# Where the file is: CT_PARAMS_FILE, else the one beside the package (the repository's
# root in a checkout, /app in a step image).
FILE_VARIABLE = "CT_PARAMS_FILE"
# The parameters themselves (JSON or YAML), as the DAG passes them; wins over the file.
CONTENT_VARIABLE = "CT_PARAMS"
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "params.yaml"

# Each setting params.yaml holds: its environment variable and its key path in the file.
# XGB_PARAMS is apart: the environment's JSON merges over train.xgb instead of replacing it.
KEYS: dict[str, str] = {
    "DATASET_NAME": "data.name",
    "TARGET_COLUMN": "data.target",
    "DROP_COLUMNS": "data.drop_columns",
    "POSITIVE_CLASS": "data.positive_class",
    "DROP_DUPLICATE_ROWS": "data.drop_duplicate_rows",
    "INVALID_NUMBERS": "data.invalid_numbers",
    "SEED": "seed",
    "TEST_SIZE": "prepare.test_size",
    "QUALITY_METRIC": "gate.metric",
    "QUALITY_THRESHOLD": "gate.threshold",
    "QUALITY_TOLERANCE": "gate.tolerance",
    "TUNE_ENABLED": "tune.enabled",
    "TUNE_TRIALS": "tune.trials",
    "TUNE_TIMEOUT_SECONDS": "tune.timeout_seconds",
    "TUNE_FOLDS": "tune.folds",
}
XGB_KEY = "train.xgb"


def load(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The parameters: CT_PARAMS if set, else the file CT_PARAMS_FILE names, else params.yaml."""
    import yaml  # pylint: disable=import-outside-toplevel  # only the steps that load settings need it

    env = os.environ if env is None else env
    content = (env.get(CONTENT_VARIABLE) or "").strip()
    where = CONTENT_VARIABLE
    if not content:
        path = Path((env.get(FILE_VARIABLE) or "").strip() or DEFAULT_FILE)
        where = str(path)
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"cannot read the parameters file {path} ({exc.strerror}); set {FILE_VARIABLE} "
                "to the params.yaml to use"
            ) from None
    try:
        loaded = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{where} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{where} must be a mapping of parameters (data, seed, train, gate...)")
    return loaded


def lookup(params: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted key path (``gate.threshold``); None when any part is missing."""
    value: Any = params
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def xgb_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """train.xgb: the XGBoost parameters the environment's XGB_PARAMS merge over."""
    value = lookup(params, XGB_KEY)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{XGB_KEY} in the parameters must be a mapping, got {value!r}")
    return dict(value)


def as_environment(params: Mapping[str, Any]) -> dict[str, str]:
    """The file's settings as the environment variables they default (unset ones left out)."""
    found: dict[str, str] = {}
    for name, path in KEYS.items():
        value = lookup(params, path)
        if value is None:
            continue
        # A list (drop_columns) as the comma-separated text its variable holds.
        found[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return found
