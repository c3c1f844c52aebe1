"""The thin command line shared by every step.

Airflow reads a step's result from the last line of its output (XCom), so the
step logs to stderr and prints exactly one JSON object to stdout, and nothing else. A
:class:`PipelineError` becomes one line on stderr and exit code 1; ``--help``
works without any setting, so an image can be smoke-tested on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings, load_settings

EXIT_FAILED = 1

StepHandler = Callable[[argparse.Namespace, Settings], dict[str, Any]]


def make_parser(step: str, description: str) -> argparse.ArgumentParser:
    """An argument parser named after the step's module, as it is run."""
    return argparse.ArgumentParser(
        prog=f"python -m pipeline_steps.{step}",
        description=description,
    )


def configure_logging() -> None:
    """One line per event on stderr, so stdout stays free for the result."""
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_cli(
    parser: argparse.ArgumentParser,
    handler: StepHandler,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, load settings, run the step, print its result; return the exit code."""
    args = parser.parse_args(argv)
    configure_logging()
    try:
        # Libraries print to stdout too (MLflow prints run links): send all of it to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            settings = load_settings()
            result = handler(args, settings)
    except PipelineError as exc:
        print(f"error: {parser.prog.rsplit('.', 1)[-1]}: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    sys.stderr.flush()
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0
