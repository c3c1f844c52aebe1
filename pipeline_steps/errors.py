"""The failures a user can act on, each saying whether trying again can help.

A step raises one of these with a message that names the file, column, setting
or service at fault; the CLI prints it as one line, with no traceback, and exits
with a code chosen by the class's ``retryable`` (see :mod:`pipeline_steps.cli`).
Airflow retries only retryable failures: a corrupt data version fails the same
way every time, so retrying it only delays the alert. Anything else escaping a
step is a bug and keeps its traceback, except where a library computes on the
data alone (:func:`data_problem`): what it raises there, the same data raises
again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class PipelineError(Exception):
    """A failure caused by input, configuration or a backing service, not by our code.

    Not retryable unless a subclass says so: the same input and settings fail the same way.
    """

    retryable: bool = False


class SettingsError(PipelineError):
    """A setting is missing or malformed."""


class UsageError(PipelineError):
    """The command line asks for something the step cannot do (argparse checks the rest)."""


class DataValidationError(PipelineError):
    """The dataset cannot be used as it is."""


class NotFoundError(PipelineError):
    """A file, object or record that should be there is not."""


class RequestRefusedError(PipelineError):
    """A service answered and refused: wrong keys, no permission, a request it never accepts."""


class ServiceUnreachableError(PipelineError):
    """S3, MLflow or Airflow did not answer, timed out or failed on its side (5xx, throttling).

    The one retryable kind: the service may be back, or less busy, a minute later.
    """

    retryable = True


# What numpy, pandas, scikit-learn, XGBoost (XGBoostError is a ValueError) and Evidently raise
# when the values they are given do not fit what they compute.
_DATA_EXCEPTIONS = (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, AttributeError)


@contextlib.contextmanager
def data_problem(doing: str) -> Iterator[None]:
    """Inside, a library's exception is a :class:`DataValidationError` saying what was being done.

    For computations whose only input is the data (fitting, scoring, metrics, drift
    tests): a retry on the same data fails the same way, so the failure is permanent
    and is reported in one line instead of a traceback that Airflow retries.
    """
    try:
        yield
    except _DATA_EXCEPTIONS as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise DataValidationError(f"{doing}: {type(exc).__name__}: {detail}") from None
