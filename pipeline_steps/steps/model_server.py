"""The model server: answers prediction requests with the Production model, following its alias.

``python -m pipeline_steps model_server`` serves on port 8000 until stopped
(pipeline_steps/serving); ``python -m pipeline_steps model_server setup`` sets up
what it needs of MLflow with the admin login (the stack's init job: its user, and
the webhook that tells it an alias moved).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline_steps.cli import EXIT_OK, EXIT_PERMANENT, configure_logging, make_parser, run_cli
from pipeline_steps.errors import PipelineError
from pipeline_steps.serving import METRICS_VARIABLE, STATE_VARIABLE
from pipeline_steps.settings import Settings, load_settings


def _setup(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:  # pylint: disable=unused-argument
    from pipeline_steps.serving import setup  # pylint: disable=import-outside-toplevel

    return setup.setup(settings)


def serve(host: str, port: int) -> int:
    """Serve until stopped; the exit code (a setting that is wrong: permanent)."""
    configure_logging()
    try:
        settings = load_settings()
    except PipelineError as exc:
        print(f"error: model_server: {exc}", file=sys.stderr, flush=True)
        return EXIT_PERMANENT
    # The processes' shared folder, named before anything imports prometheus_client: its
    # metrics are multiprocess ones only when the variable is set at import.
    state = Path(tempfile.mkdtemp(prefix="ct-serve-"))
    (state / "metrics").mkdir()
    os.environ[STATE_VARIABLE] = str(state)
    os.environ[METRICS_VARIABLE] = str(state / "metrics")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a log line per file, per process
    try:
        from pipeline_steps.serving import server  # pylint: disable=import-outside-toplevel

        server.serve(settings, host, port)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: serve (the default), or set up MLflow for the server."""
    argv = sys.argv[1:] if argv is None else argv
    parser = make_parser(__name__, __doc__)
    parser.add_argument("action", nargs="?", choices=("serve", "setup"), default="serve",
                        help="serve (default), or set up the server's MLflow user and webhook")
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on")  # nosec B104
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on")
    if argv[:1] == ["setup"]:
        return run_cli(parser, _setup, argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code in (0, None) else EXIT_PERMANENT
    return serve(args.host, args.port)
