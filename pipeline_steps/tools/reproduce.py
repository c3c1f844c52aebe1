"""Reproduce a registered model version from the registry alone, and say whether it came out the same.

`make reproduce VERSION=N` runs this on the host. A version's tags and its run
record everything that made it: the data version (a DVC md5 on the S3 remote),
the seed, the XGBoost parameters, the test size, the target, the columns the
user dropped, the git commit and the image of every step. This re-runs
prepare, train and evaluate with exactly those, each in the image it ran in
when that image is still on this machine (by its recorded image id), else
locally in this checkout's environment, and compares the recomputed metrics
with the recorded ones. Equal means equal: the same code, data, seed and
libraries give the same bits, so any difference is a finding.

Nothing is registered. The re-run is an MLflow run of its own in the
experiment ``<experiment>-reproductions``, tagged with the version it
reproduces, so the model's own run and the registry are left as they were.
A tuned version's study is not run again: its best parameters are in the
recorded XGBoost parameters.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline_steps.services import provenance
from pipeline_steps.services import storage
from pipeline_steps.services import tracking
from pipeline_steps.cli import configure_logging
from pipeline_steps.errors import NotFoundError, PipelineError, SettingsError
from pipeline_steps.data.schema import DROPPED_BY_SETTING
from pipeline_steps import pipeline
from pipeline_steps.pipeline import Input
from pipeline_steps.settings import METRICS, Settings, declared, load_settings, read_env_file

log = logging.getLogger(__name__)
# The steps that make a model and its numbers (evaluate's inputs, and theirs; not optional ones).
STEPS = tuple(step.name for step in pipeline.making("evaluate"))
EXPERIMENT_SUFFIX = "-reproductions"
TAG_REPRODUCES = "reproduces"
TAG_OUTCOME = "reproduce.outcome"
EXIT_SAME, EXIT_DIFFERENT, EXIT_CANNOT = 0, 1, 2
STEP_TIMEOUT_SECONDS = 1800
# The compose helper the image runner starts a step through (the stack's `reproduce` service).
STACK_SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "scripts" / "stack.sh"


@dataclass(frozen=True)
class Recording:  # pylint: disable=too-many-instance-attributes  # one flat record of one version
    """What the registry says produced a model version."""

    model_name: str
    version: str
    run_id: str
    data_version: str
    dataset: str
    seed: int
    git_commit: str
    target: str
    test_size: float
    xgb_params: dict[str, Any]
    drop_columns: tuple[str, ...]
    positive_class: str | None
    images: dict[str, str]
    metrics: dict[str, float]
    tune_run_id: str | None = None
    rows_train: int | None = None
    drop_duplicate_rows: bool = False
    invalid_numbers: str = "refuse"


def _param_value(text: str) -> Any:
    """An MLflow param back as the value it was (MLflow keeps str(value)): 4, 0.1, True, "hist"."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _required(found: dict[str, str], name: str, where: str) -> str:
    value = found.get(name)
    if not value:
        raise PipelineError(f"{where} has no {name!r}: it cannot be reproduced from the registry")
    return value


def recorded(client: Any, model_name: str, version: str) -> Recording:
    """Read a version's provenance and metrics from the registry and its run."""
    from mlflow.exceptions import MlflowException  # pylint: disable=import-outside-toplevel

    try:
        found = client.get_model_version(model_name, version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise NotFoundError(f"{model_name} has no version {version} in the registry") from None
        raise tracking.service_error(exc, f"cannot read {model_name} version {version}") from None
    run = tracking.get_run(client, found.run_id)
    tags = {**run.data.tags, **(found.tags or {})}
    params = run.data.params
    where = f"{model_name} version {version} (run {found.run_id})"
    schema = tracking.load_run_json(client, found.run_id, tracking.SCHEMA_FILE) or {}
    positive = schema.get("positive_class")
    return Recording(
        model_name=model_name,
        version=str(version),
        run_id=found.run_id,
        data_version=_required(tags, tracking.TAG_DATA_VERSION, where),
        dataset=tags.get(tracking.TAG_DATASET) or params.get("dataset") or "",
        seed=int(_required(tags, tracking.TAG_SEED, where)),
        git_commit=tags.get(tracking.TAG_GIT_COMMIT, "unknown"),
        target=_required(params, "target", where),
        test_size=float(_required(params, "test_size", where)),
        xgb_params={k.removeprefix("xgb."): _param_value(v) for k, v in params.items()
                    if k.startswith("xgb.")},
        drop_columns=tuple(name for name, why in (schema.get("dropped") or {}).items()
                           if why == DROPPED_BY_SETTING),
        positive_class=None if positive is None else str(positive),
        images={step: tags[f"{tracking.IMAGE_TAG_PREFIX}{step}"] for step in STEPS
                if f"{tracking.IMAGE_TAG_PREFIX}{step}" in tags},
        metrics={m: run.data.metrics[m] for m in METRICS if m in run.data.metrics},
        tune_run_id=tags.get("tune.run_id"),
        rows_train=int(params["rows_train"]) if params.get("rows_train") else None,
        # Recorded since rows are counted; a version from before trained with neither.
        drop_duplicate_rows=params.get("drop_duplicate_rows") == "True",
        invalid_numbers=params.get("invalid_numbers") or "refuse",
    )


def step_settings(settings: Settings, recording: Recording) -> dict[str, str]:
    """The settings every re-run step gets: the recorded ones, over whatever is set here.

    Given twice on purpose: as variables (which win over any parameters file, and
    which images built before params.yaml read) and as the CT_PARAMS document
    (whose train.xgb is replaced, not merged, so a key added to params.yaml since
    cannot creep into the reproduction).
    """
    params = {
        "data": {"name": recording.dataset, "target": recording.target,
                 "drop_columns": list(recording.drop_columns), "positive_class": recording.positive_class,
                 "drop_duplicate_rows": recording.drop_duplicate_rows,
                 "invalid_numbers": recording.invalid_numbers},
        "seed": recording.seed,
        "prepare": {"test_size": recording.test_size},
        "train": {"xgb": recording.xgb_params},
        "tune": {"enabled": False, "trials": 1, "timeout_seconds": 1, "folds": 2},
        "gate": {"metric": settings.quality_metric, "threshold": settings.quality_threshold,
                 "tolerance": settings.quality_tolerance},
    }
    return {
        "CT_PARAMS": json.dumps(params, sort_keys=True),
        "DATASET_NAME": recording.dataset,
        "TARGET_COLUMN": recording.target,
        "DROP_COLUMNS": ",".join(recording.drop_columns),
        "POSITIVE_CLASS": recording.positive_class or "",
        "SEED": str(recording.seed),
        "TEST_SIZE": repr(recording.test_size),
        "DROP_DUPLICATE_ROWS": str(recording.drop_duplicate_rows).lower(),
        "INVALID_NUMBERS": recording.invalid_numbers,
        "XGB_PARAMS": json.dumps(recording.xgb_params, sort_keys=True),
        "TUNE_ENABLED": "false",
        "MLFLOW_EXPERIMENT_NAME": f"{settings.mlflow_experiment_name}{EXPERIMENT_SUFFIX}",
    }


class StepRunner(Protocol):  # pylint: disable=too-few-public-methods
    """Runs one step's CLI and returns the result it printed."""

    where: str

    def run(self, step: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Run ``python -m pipeline_steps.<step> ARGS`` with these settings."""


def _result(step: str, done: subprocess.CompletedProcess) -> dict[str, Any]:
    """The step's one-line JSON result; its error line (stderr) when it failed."""
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        raise PipelineError(f"{step} failed (exit {done.returncode}): "
                            + (errors[-1] if errors else done.stderr.strip()[-2000:]))
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise PipelineError(f"{step} printed no result: {done.stdout[-500:]!r}") from None


def _run(command: list[str], env: dict[str, str], step: str) -> dict[str, Any]:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, timeout=STEP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise PipelineError(f"{step} did not finish in {STEP_TIMEOUT_SECONDS} s") from None
    return _result(step, done)


@dataclass
class LocalRunner:
    """A step in this Python environment, with the working copy's code."""

    where: str = "locally"

    def run(self, step: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
        """The step as a subprocess of this interpreter."""
        merged = {**os.environ, **env, "STEP_IMAGE": ""}
        return _run([sys.executable, "-m", "pipeline_steps", step, *args], merged, step)


@dataclass
class ImageRunner:
    """A step in the very image it was recorded with, on the stack's network (compose `reproduce`)."""

    image_id: str
    recorded_as: str
    stack_script: Path = STACK_SCRIPT
    where: str = field(init=False)

    def __post_init__(self) -> None:
        self.where = f"in its image {self.recorded_as}"

    def run(self, step: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Tag the image for compose (which wants a name), then run the step through it."""
        name = f"ct-reproduce:{step}-{self.image_id.removeprefix('sha256:')[:12]}"
        tagged = subprocess.run(["docker", "tag", self.image_id, name], capture_output=True, text=True,
                                check=False)
        if tagged.returncode != 0:
            raise PipelineError(f"cannot name the image {self.image_id} for compose: {tagged.stderr.strip()}")
        settings = [f"{key}={value}" for key, value in {**env, "STEP_IMAGE": self.recorded_as}.items()]
        command = ["bash", "-c", 'source "$0" && compose run --rm -T "$@"', str(self.stack_script),
                   *(arg for pair in settings for arg in ("-e", pair)), "reproduce", *args]
        return _run(command, {**os.environ, "CT_REPRODUCE_IMAGE": name}, step)


def image_id(recorded_as: str) -> str | None:
    """The id of a recorded image (``ct-train:<tag>@sha256:<id>``) when Docker here has it."""
    _, at, digest = recorded_as.partition("@")
    if not at or not digest.startswith("sha256:"):
        return None  # not run from an image (dvc repro), or recorded without its id
    try:
        done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", digest],
                              capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None  # no Docker here
    return digest if done.returncode == 0 and done.stdout.strip() == digest else None


def choose_runner(settings: Settings, recording: Recording, step: str, local_only: bool) -> StepRunner:
    """The recorded image when it is here (and Docker with it), else this environment."""
    recorded_as = recording.images.get(step, "")
    found = None if local_only else image_id(recorded_as)
    if found is not None and STACK_SCRIPT.is_file():
        return ImageRunner(found, recorded_as)
    if local_only:
        why = "as asked"
    elif "@sha256:" in recorded_as:
        why = f"its image {recorded_as} is not on this machine"
    else:
        why = f"it was not run from an image ({recorded_as or 'none recorded'})"
    code = provenance.git_commit(settings)
    if code != recording.git_commit:
        why += f"; with this checkout's code at {code[:12]}, not {recording.git_commit[:12]}"
    return LocalRunner(f"locally: {why}")


@dataclass(frozen=True)
class Comparison:
    """One recorded number next to its recomputed value."""

    name: str
    recorded: Any
    recomputed: Any

    @property
    def same(self) -> bool:
        """Exactly equal: a reproduction is bit for bit or it is not one."""
        return self.recorded == self.recomputed


def compare(recording: Recording, rows_train: int | None, metrics: dict[str, float]) -> list[Comparison]:
    """Every recorded metric (and the train rows) next to what the re-run computed."""
    rows = [Comparison(name, value, metrics.get(name)) for name, value in recording.metrics.items()]
    if recording.rows_train is not None:
        rows.append(Comparison("rows_train", recording.rows_train, rows_train))
    return rows


def reproduce(settings: Settings, version: str, *, local_only: bool = False) -> dict[str, Any]:
    """Re-run prepare, train and evaluate of a registered version; compare; register nothing."""
    client = tracking.connect(settings)
    recording = recorded(client, settings.model_name, version)
    env = step_settings(settings, recording)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    prefix = f"s3://{settings.s3.runs_bucket}/reproduce/{settings.model_name}/v{version}-{stamp}"
    runners = {step: choose_runner(settings, recording, step, local_only) for step in STEPS}
    for step in STEPS:
        log.info("%s: %s", step, runners[step].where)

    def value(item: Input) -> str | None:
        """An input's value in the re-run: the recorded data version, or an earlier step's output."""
        if item.result == ("check_data", "latest_version"):
            return recording.data_version
        return storage.join(prefix, item.step) if item.step in STEPS else None

    results = {step: runners[step].run(step, pipeline.step(step).arguments(value, storage.join(prefix, step)),
                                       env) for step in STEPS}
    prepared, trained, evaluated = results["prepare"], results["train"], results["evaluate"]
    rows = compare(recording, prepared.get("rows_train"), evaluated["metrics"])
    same = all(row.same for row in rows)
    client.set_tag(trained["run_id"], TAG_REPRODUCES,
                   f"{settings.model_name}/{version} (run {recording.run_id})")
    client.set_tag(trained["run_id"], TAG_OUTCOME, "identical" if same else "different")
    return {
        "recording": recording,
        "where": {step: runner.where for step, runner in runners.items()},
        "rows": rows,
        "same": same,
        "run_id": trained["run_id"],
        "experiment": env["MLFLOW_EXPERIMENT_NAME"],
        "output": prefix,
    }


def report(result: dict[str, Any]) -> str:
    """What a person reads: where each step ran, the numbers side by side, and one last line."""
    recording: Recording = result["recording"]
    lines = [
        f"{recording.model_name} version {recording.version} (MLflow run {recording.run_id})",
        f"  data version {recording.data_version} ({recording.dataset}), seed {recording.seed}, "
        f"git commit {recording.git_commit}",
        f"  xgboost {json.dumps(recording.xgb_params, sort_keys=True)}"
        + (f" (the best of tune study run {recording.tune_run_id}; the study is not re-run)"
           if recording.tune_run_id else ""),
        *(f"  {step:<9} ran {where}" for step, where in result["where"].items()),
        f"{'':2}{'':<18}{'recorded':>20}{'re-computed':>20}",
        *(f"  {row.name:<18}{row.recorded!s:>20}{row.recomputed!s:>20}  {'same' if row.same else 'DIFFERENT'}"
          for row in result["rows"]),
    ]
    where = f"re-run: MLflow run {result['run_id']} in experiment {result['experiment']}; nothing registered"
    if result["same"]:
        lines.append(f"reproduced: {recording.model_name} version {recording.version}, "
                     f"every metric identical ({where})")
    else:
        different = ", ".join(f"{row.name} {row.recorded} -> {row.recomputed}"
                              for row in result["rows"] if not row.same)
        lines.append(f"not reproduced: {recording.model_name} version {recording.version} differs: "
                     f"{different} ({where})")
    return "\n".join(lines)


def stack_environment(env_file: Path) -> dict[str, str]:
    """The settings a re-run on the host takes from the stack's .env: where S3 and MLflow answer on
    localhost, the steps' S3 keys and the MLflow login, and the stack's own settings."""
    found = read_env_file(env_file)

    def port(name: str, default: int) -> str:  # as the stack's scripts read it: here, else .env
        return os.environ.get(name) or found.get(name) or str(default)

    host = {
        "S3_ENDPOINT_URL": f"http://localhost:{port('S3_PORT', 9000)}",
        "MLFLOW_TRACKING_URI": f"http://localhost:{port('MLFLOW_PORT', 5000)}",
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": found.get("MLFLOW_ADMIN_PASSWORD", ""),
        "AWS_ACCESS_KEY_ID": found.get("S3_PIPELINE_ACCESS_KEY", ""),
        "AWS_SECRET_ACCESS_KEY": found.get("S3_PIPELINE_SECRET_KEY", ""),
        # MLflow's presigned S3 URLs name the S3 service as containers see it: stream through MLflow.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    missing = [name for name in ("MLFLOW_ADMIN_PASSWORD", "S3_PIPELINE_ACCESS_KEY") if not found.get(name)]
    if missing:
        raise SettingsError(f"{env_file} has no {', '.join(missing)}: start the stack first (make up)")
    declared_names = {item.name for item in declared()}
    return {**{k: v for k, v in found.items() if k in declared_names}, **host}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: exit 0 when identical, 1 when a number differs, 2 when it could not run."""
    parser = argparse.ArgumentParser(prog="python -m pipeline_steps.tools.reproduce",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the model version to reproduce (MODEL_NAME's)")
    parser.add_argument("--local", action="store_true",
                        help="run every step in this environment, even where the recorded image is here")
    parser.add_argument("--env-file", type=Path,
                        help="the stack's .env: reproduce a version of that stack, from this host")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        if args.env_file:
            if not args.env_file.is_file():
                raise SettingsError(f"{args.env_file} not found: start the stack first (make up)")
            for name, value in stack_environment(args.env_file).items():
                os.environ.setdefault(name, value)  # what is set here wins, as for the stack's scripts
        result = reproduce(load_settings(), args.version, local_only=args.local)
    except PipelineError as exc:
        print(f"error: reproduce: {exc}", file=sys.stderr, flush=True)
        return EXIT_CANNOT
    print(report(result), flush=True)
    return EXIT_SAME if result["same"] else EXIT_DIFFERENT


if __name__ == "__main__":
    raise SystemExit(main())
