"""Which version answers: the one the ``production`` alias points at, followed while the server runs.

MLflow's ``mlflow models serve`` resolves an alias once, at start. Here a thread
asks MLflow where the alias points every few seconds (SERVE_ALIAS_CHECK_SECONDS),
and at once when MLflow's registry webhook says an alias moved (:meth:`Follower.nudge`).
A new version is loaded beside the one serving, checked on the input example it
was logged with, and swapped in as one reference assignment: a request takes the
version serving when it starts and keeps it to its end, so no request is answered
by two versions and none fails during a swap; the old version goes when its last
request is done. A version that cannot load or fails its check is refused: the
old one keeps serving, the refusal is reported (``on_refused``) once, and the
version is not tried again. MLflow being away is not a refusal: the version
serving keeps serving and the next check tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline_steps.errors import PipelineError, ServiceUnreachableError
from pipeline_steps.modelling.model import LabelledModel

log = logging.getLogger(__name__)
# How often the thread looks for a nudge (a webhook delivery) between checks of MLflow.
NUDGE_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Served:
    """A version loaded and checked: what answers a request, and what ``/version`` says of it."""

    model: LabelledModel
    name: str
    version: str
    run_id: str | None
    data_version: str | None
    loaded_at: str

    def describe(self) -> dict[str, Any]:
        """The version as ``/version`` shows it."""
        return {"model_name": self.name, "model_version": self.version, "run_id": self.run_id,
                "data_version": self.data_version, "loaded_at": self.loaded_at}


@dataclass(frozen=True)
class Target:
    """Where the alias points: a version of the model, and its run."""

    version: str
    run_id: str | None


class Refused(PipelineError):
    """A version that must not serve: it cannot be loaded, or it fails on its own input example."""


def checked(model: LabelledModel, example: Any) -> LabelledModel:
    """The model, once it has scored its input example: every row, probabilities that sum to one."""
    if example is None or len(example) == 0:
        raise Refused("it was logged without an input example to check it on")
    try:
        probabilities, reasons = model.scored(example)
    except Exception as exc:  # whatever a broken model raises, it must not serve
        raise Refused(f"it fails on its own input example: {type(exc).__name__}: {exc}") from None
    if reasons.notna().any():
        raise Refused(f"it cannot score its own input example: {reasons.dropna().iloc[0]}")
    shape = (len(example), len(model.schema.classes))
    if probabilities.shape != shape or not np.isfinite(probabilities).all() \
            or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
        raise Refused(f"its answers to its own input example are not probabilities of its "
                      f"{len(model.schema.classes)} classes")
    return model


def now() -> str:
    """The time a version was loaded (UTC, to the second)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Follower:  # pylint: disable=too-many-instance-attributes  # the follower's state, in one place
    """Keeps :attr:`current` the checked version the alias points at (see the module's docstring).

    ``resolve`` says where the alias points (None: nowhere yet); ``load`` loads and checks
    a version (raising :class:`Refused`, or a PipelineError when a service failed);
    ``on_swapped`` and ``on_refused`` are told of each swap and each refusal.
    ``nudge_file``: a file whose change (another process's webhook) means "check now".
    """

    def __init__(self, resolve: Callable[[], Target | None], load: Callable[[Target], Served], *,
                 check_seconds: float, on_swapped: Callable[[Served], None] = lambda served: None,
                 on_refused: Callable[[str, str], None] = lambda version, reason: None,
                 nudge_file: Path | None = None) -> None:
        self._resolve = resolve
        self._load = load
        self._check_seconds = check_seconds
        self._on_swapped = on_swapped
        self._on_refused = on_refused
        self._nudge_file = nudge_file
        self._nudged = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checking = threading.Lock()
        self.current: Served | None = None
        self.refused: dict[str, str] = {}
        self.last_problem: str | None = None

    def check(self) -> Served | None:
        """Look where the alias points now; load, check and swap in a new version. The one serving."""
        with self._checking:
            try:
                target = self._resolve()
            except PipelineError as exc:
                self._problem(f"cannot ask MLflow where the production alias points: {exc}")
                return self.current
            if target is None:
                self._problem("no version holds the production alias yet")
                return self.current
            if self.current is not None and target.version == self.current.version:
                self.last_problem = None
                return self.current
            if target.version in self.refused:
                return self.current
            return self._swap_to(target)

    def _swap_to(self, target: Target) -> Served | None:
        started = time.monotonic()
        try:
            candidate = self._load(target)
        except ServiceUnreachableError as exc:  # MLflow or S3 away: not the version's fault
            self._problem(f"cannot load version {target.version} yet: {exc}")
            return self.current
        except PipelineError as exc:
            reason = str(exc)
            self.refused[target.version] = reason
            keeps = (f"version {self.current.version} keeps serving" if self.current
                     else "no version is serving")
            log.error("refused version %s: %s; %s", target.version, reason, keeps)
            self._on_refused(target.version, reason)
            return self.current
        previous, self.current = self.current, candidate  # the swap: one reference
        self.last_problem = None
        log.info("serving version %s (was %s), loaded and checked in %.1f s", candidate.version,
                 previous.version if previous else "none", time.monotonic() - started)
        self._on_swapped(candidate)
        return candidate

    def _problem(self, problem: str) -> None:
        if problem != self.last_problem:
            log.warning("%s", problem)
        self.last_problem = problem

    def nudge(self) -> None:
        """Check now (MLflow said an alias moved), not at the next periodic check."""
        if self._nudge_file is not None:
            self._nudge_file.touch()
        self._nudged.set()

    def _nudge_stamp(self) -> int:
        try:
            return self._nudge_file.stat().st_mtime_ns if self._nudge_file else 0
        except FileNotFoundError:
            return 0

    def start(self) -> None:
        """Follow the alias in a thread: a check now, then on each nudge and every few seconds."""
        self._thread = threading.Thread(target=self._follow, name="alias-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following (the version serving stays loaded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _follow(self) -> None:
        stamp, due = self._nudge_stamp(), 0.0
        while not self._stop.is_set():
            seen = self._nudge_stamp()
            if self._nudged.is_set() or seen != stamp or time.monotonic() >= due:
                self._nudged.clear()
                stamp, due = seen, time.monotonic() + self._check_seconds
                try:
                    self.check()
                except Exception:  # pylint: disable=broad-exception-caught  # the thread must live on
                    log.exception("checking the production alias failed")
            self._nudged.wait(NUDGE_POLL_SECONDS)
