"""``python -m pipeline_steps STEP [ARGS]``: run one step of the pipeline by its name.

The names are the steps of pipeline_steps/pipeline.py; ``--help`` after a name
shows that step's own. Only the step's module is imported, so a step image that
carries one step's code runs it without the others'.
"""

from __future__ import annotations

import importlib
import sys

from pipeline_steps import pipeline
from pipeline_steps.cli import EXIT_PERMANENT, exit_process


def main(argv: list[str]) -> int:
    """Run the named step's command line with the rest of the arguments; its exit code."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m pipeline_steps STEP [ARGS...]\n\nsteps:")
        for step in pipeline.STEPS:
            print(f"  {step.name:<14} {step.doc}")
        return 0 if argv else EXIT_PERMANENT
    try:
        step = pipeline.step(argv[0])
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return EXIT_PERMANENT
    return importlib.import_module(step.module).main(argv[1:])


if __name__ == "__main__":
    exit_process(main(sys.argv[1:]))
