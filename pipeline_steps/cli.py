"""The thin command line shared by every step, and the contract Airflow relies on.

The contract of ``python -m pipeline_steps <step>`` (the steps: pipeline_steps/pipeline.py):

- **stdout** carries exactly one line, the step's result as one JSON object, and
  nothing else; on failure it carries nothing. Airflow reads the result from the
  container's stdout stream alone: Docker does not order lines across the two
  streams, so a result mixed with logs could not be found reliably.
- **stderr** carries the logs (one line per event) and, on failure, one line
  ``error: <step>: <message>`` naming what is at fault, with no traceback.
- **The exit code** says whether running the step again can help:

  - ``EXIT_OK`` (0): done; the result is on stdout (``--help`` exits 0 too).
  - ``EXIT_RETRYABLE`` (1): a transient failure: S3, MLflow or Airflow
    unreachable, a timeout, an HTTP 5xx, S3 throttling (``SlowDown``,
    ``ServiceUnavailable``, ``InternalError``, ``RequestTimeout``). It is also
    what Python itself returns for an unexpected exception, which keeps its
    traceback: a bug we do not know to be permanent is retried.
  - ``EXIT_PERMANENT`` (3): no retry can fix it: invalid or corrupt data, a
    missing column, a bad setting, a run, object or data version that is not
    there, S3 or MLflow refusing access, bad command-line arguments (argparse's
    own exit code 2 is turned into this one). Airflow fails the task at once.

The DAGs read ``EXIT_PERMANENT`` from here (the Airflow image carries this
package's light modules). ``--help`` works without any setting, so an image can
be smoke-tested on its own.

After a step succeeds, one more stderr line, ``ct.timing {...}``, says when its
process started (from ``/proc/self/stat``), when its modules were imported (the
step's own lazy imports count as its work) and when it finished, in seconds
since the epoch: `make bench-dag` reads it from the task log to tell the
interpreter and import time from the step's work.

A step run as a program ends with :func:`exit_process`: once its output is
flushed it leaves without the interpreter's teardown, which took 0.4-0.9 s per
container with pandas, scikit-learn and MLflow loaded (`make bench-dag`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings, load_settings

EXIT_OK = 0
EXIT_RETRYABLE = 1
EXIT_PERMANENT = 3

TIMING_PREFIX = "ct.timing "
_M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's malloc.h
_MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's starting value, now kept
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"

StepHandler = Callable[[argparse.Namespace, Settings], dict[str, Any]]


class StepParser(argparse.ArgumentParser):
    """An argument parser whose usage errors read like every other step error."""

    def __init__(self, step: str, description: str) -> None:
        super().__init__(prog=f"python -m pipeline_steps {step}", description=description)
        self.step = step

    def error(self, message: str) -> NoReturn:
        """Usage, then the one ``error:`` line; exits 2, which :func:`run_cli` makes permanent."""
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {self.step}: {message}\n")


def make_parser(module: str, doc: str) -> StepParser:
    """The argument parser of the step whose module is ``module`` (its ``__name__``), described by the
    first line of its docstring."""
    return StepParser(module.rsplit(".", 1)[-1], doc.strip().splitlines()[0])


def configure_logging() -> None:
    """One line per event on stderr, so stdout stays free for the result."""
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def return_freed_memory() -> None:
    """Have glibc hand large freed blocks back to the system at once.

    By default glibc raises its mmap threshold each time a large block is freed, so
    later frames come from a heap it keeps: a step that reads a table and then splits
    it held the freed chunks of the read too (prepare, a million rows: 975 MiB peak,
    898 MiB with a fixed threshold). Nothing to do off glibc.

    Arrow's own allocator (jemalloc or mimalloc) keeps what it frees for later: reading
    a Parquet split left train at 909 MiB for a 249 MiB frame (505 MiB with the system
    allocator, which the threshold above then lets give back). pandas imports pyarrow,
    which reads ARROW_DEFAULT_MEMORY_POOL then; one set from outside still wins.
    """
    if ARROW_POOL_VARIABLE not in os.environ:
        os.environ[ARROW_POOL_VARIABLE] = "system"  # for a pyarrow imported later
        arrow = sys.modules.get("pyarrow")
        if arrow is not None:
            arrow.set_memory_pool(arrow.system_memory_pool())
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def process_started(stat_path: str = "/proc/self/stat") -> float | None:
    """When this process started, in seconds since the epoch (10 ms resolution); None off Linux."""
    try:
        with open(stat_path, encoding="ascii") as stat:
            # starttime is field 22, counted in clock ticks since boot; comm (field 2) may hold spaces.
            ticks = int(stat.read().rpartition(")")[2].split()[19])
        since_start = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.time() - since_start


def timing_line(step: str, started: float | None, imported: float, finished: float) -> str:
    """The one ``ct.timing`` line a step logs when it is done (module docstring)."""
    return TIMING_PREFIX + json.dumps({"step": step, "started": started, "imported": imported,
                                       "finished": finished})


def exit_code(error: PipelineError) -> int:
    """The exit code that tells Airflow whether to retry after ``error``."""
    return EXIT_RETRYABLE if error.retryable else EXIT_PERMANENT


def exit_process(code: int) -> NoReturn:
    """End a step's process with ``code`` at once: flush stdout and stderr, skip the interpreter's teardown.

    Only for ``if __name__ == "__main__"``: by then the step has closed its MLflow runs
    and written its outputs; what the teardown would do (collect every module's objects,
    atexit handlers) changes nothing for a container that is removed next.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_cli(
    parser: StepParser,
    handler: StepHandler,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, load settings, run the step, print its result; return the exit code."""
    imported = time.time()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits 0 after --help and 2 on a usage error, which no retry fixes.
        return EXIT_OK if exc.code in (0, None) else EXIT_PERMANENT
    configure_logging()
    return_freed_memory()
    try:
        # Libraries print to stdout too (MLflow prints run links): send all of it to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            settings = load_settings()
            result = handler(args, settings)
    except PipelineError as exc:
        print(f"error: {parser.step}: {exc}", file=sys.stderr, flush=True)
        return exit_code(exc)
    print(timing_line(parser.step, process_started(), imported, time.time()), file=sys.stderr, flush=True)
    print(json.dumps(result, sort_keys=True), flush=True)
    return EXIT_OK
