"""A copy of the project with a throwaway step and a throwaway setting declared, as a newcomer adds them.

docs/architecture.md says how to add a step and a setting; the tests that use this
check that doing just that is enough: the DAG, dvc.yaml, the image list, .env.example
and the settings pick them up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEP = "explain"
SETTING = "explain_top_features"
STEP_MODULE = '''"""Explain the trained model: its most important features (a throwaway step of the tests)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.settings import Settings


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return {"step": "explain", "trained": args.trained, "top": settings.explain_top_features}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument("--trained", required=True)
    parser.add_argument("--output", required=True)
    return run_cli(parser, _handle, argv)
'''
STEP_DECLARATION = '''    Step("explain", "the trained model's most important features",
         lock="evaluate", dag=TRAINING_DAG, waits_for=("evaluate",), local=True,
         params=("explain",),
         inputs=(_output("train", "--trained"),)),
'''
SETTING_DECLARATION = (
    '    explain_top_features: int = setting(Integer(1), "how many features explain names",\n'
    '        key="explain.top", param="explain_top", required=True)\n'
)


def copy_with_throwaways(target: Path) -> Path:
    """The project's declarations, DAGs and generated files under ``target``, with the throwaway step and
    setting added as docs/architecture.md says; ``target``."""
    for name in ("pipeline_steps", "orchestration/dags"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "README.md", "dvc.yaml", ".env.example"):
        shutil.copy2(REPO / name, target / name)
    (target / "pipeline_steps" / "steps" / f"{STEP}.py").write_text(STEP_MODULE, encoding="utf-8")
    pipeline = target / "pipeline_steps" / "pipeline.py"
    text = pipeline.read_text(encoding="utf-8")
    anchor = '    Step("register",'
    pipeline.write_text(text.replace(anchor, STEP_DECLARATION + anchor, 1), encoding="utf-8")
    settings = target / "pipeline_steps" / "settings.py"
    text = settings.read_text(encoding="utf-8")
    anchor = "    # ---- where things are kept\n"
    settings.write_text(text.replace(anchor, SETTING_DECLARATION + anchor, 1), encoding="utf-8")
    params = target / "params.yaml"
    params.write_text(params.read_text(encoding="utf-8") + "explain:\n  top: 5\n", encoding="utf-8")
    return target
