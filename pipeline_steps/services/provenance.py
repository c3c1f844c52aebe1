"""What makes a model traceable: the code commit, the image, the data version and the seed.

Each step tags the MLflow run with what it knows; the register step copies those
tags onto the model version, so the registry alone answers "what produced this?".
"""

from __future__ import annotations

import subprocess
from functools import lru_cache

from pipeline_steps.settings import Settings
from pipeline_steps.services.tracking import IMAGE_TAG_PREFIX, TAG_GIT_COMMIT

NOT_IN_AN_IMAGE = "none (not run from an image)"


@lru_cache(maxsize=1)
def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def git_commit(settings: Settings) -> str:
    """GIT_COMMIT as deployed (images carry no .git), else the working tree's HEAD."""
    return settings.git_commit or _git_head()


def image_tag(settings: Settings, step: str) -> dict[str, str]:
    """The tag recording which image ran ``step`` (STEP_IMAGE, a digest where known)."""
    return {f"{IMAGE_TAG_PREFIX}{step}": settings.step_image or NOT_IN_AN_IMAGE}


def run_tags(settings: Settings, step: str) -> dict[str, str]:
    """Provenance tags a step adds to its MLflow run."""
    commit = git_commit(settings)
    return {
        TAG_GIT_COMMIT: commit,
        "mlflow.source.git.commit": commit,
        **image_tag(settings, step),
    }
