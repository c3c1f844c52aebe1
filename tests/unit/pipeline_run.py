"""Runs the steps in order, as the DAG does, for tests that need a trained or registered model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.modelling.production import serve
from pipeline_steps.services import tracking
from pipeline_steps.steps import evaluate
from pipeline_steps.steps import prepare
from pipeline_steps.steps import register
from pipeline_steps.services import storage
from pipeline_steps.steps import train
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage


@dataclass
class PipelineRun:
    """The result each step returned."""

    prepared: dict[str, Any]
    trained: dict[str, Any]
    evaluated: dict[str, Any]
    registered: dict[str, Any] | None = None


def run_steps(
    settings: Settings,
    store: Storage,
    prefix: str,
    *,
    data_version: str | None = None,
    input_uri: str | None = None,
    do_register: bool = True,
) -> PipelineRun:
    """prepare -> train -> evaluate (-> register) under a run-scoped prefix."""
    prepared = prepare.prepare(
        settings, store, storage.join(prefix, "prepare"),
        data_version=data_version, input_uri=input_uri,
    )
    trained = train.train(settings, store, prepared["prepared_uri"], storage.join(prefix, "train"))
    evaluated = evaluate.evaluate(
        settings, store, trained["trained_uri"], storage.join(prefix, "evaluate")
    )
    run = PipelineRun(prepared, trained, evaluated)
    if do_register:
        run.registered = register.register(settings, store, evaluated["evaluated_uri"])
    return run


def train_version(settings: Settings, store: Storage, prefix: str, seed: int = 42) -> str:
    """Train and register a version of the penguins model (the ``penguins`` fixture's); its number."""
    source = f"{prefix}/input/penguins.csv"
    store.write_bytes(source, builtin_csv("penguins", "species"))
    anything_registers = dataclasses.replace(settings, seed=seed, quality_threshold=0.0,
                                             quality_tolerance=1.0)
    registered = run_steps(anything_registers, store, prefix, input_uri=source).registered
    assert registered is not None and registered.get("version"), registered
    return str(registered["version"])


def point_production_at(settings: Settings, version: str) -> None:
    """Move the production alias, as promotion does."""
    serve(tracking.connect(settings), settings.model_name, version)
