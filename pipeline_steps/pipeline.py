"""The pipeline, declared once: each step's one name, what it reads and writes, where it runs.

A step's name is its module (``pipeline_steps/steps/<name>.py``, run as ``python -m
pipeline_steps <name>``), its image (``ct-<name>`` with hyphens), its Airflow task
and its DVC stage. Everything that needs the steps derives them from here: the
DAGs build their step tasks and edges (``orchestration/dags``), ``images/build.sh``
picks the images and their locks (``python -m pipeline_steps.pipeline images``),
``dvc.yaml`` is generated from it (``make generate``; ``make lint`` checks it is
current), and so are ``make reproduce``'s re-run, the benches and ``make run``'s
client. The few tasks of the DAGs that are not steps (the gate's branch, the
approval) are named here too, so the DAGs and the client agree on them.

A step's command line is its inputs and its output: each input is where a value
comes from (another step's output location, a field of a task's result, a run's
Param, a local file), and each place the pipeline runs (Airflow, ``dvc repro``,
``make reproduce``) says what it has of those (:meth:`Step.arguments`).

Standard library only: the dag-processor imports it every few seconds, and the
Airflow image carries it without the steps' libraries.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

TRAINING_DAG = "ml_training_pipeline"
SCORING_DAG = "batch_scoring"
ROLLBACK_DAG = "rollback_production"
MONITOR_DAG = "monitor_production"

# The tasks of the training DAG that are not steps.
GATE_TASK = "quality_gate"  # follows evaluate's decision: register, or stop
STOP_TASK = "stop_pipeline"
APPROVAL_TASK = "approve_promotion"  # a person approves promotion (human-in-the-loop)
KEEP_TASK = "keep_production"
APPROVED_BY_KEY = "approved_by"  # the approval task's XCom: who approved
REASON_KEY = "reason"  # every task's XCom: why it skipped or stopped

# What a step writes for the next: its result (the JSON it prints), under its output location.
RESULT_FILE = "result.json"
# Where a step's outputs go, under the runs bucket: {run} is the run's id as a path segment.
RUN_OUTPUT = "runs/{run}/{step}"
# evaluate's files that `dvc metrics` and `dvc plots` read (pipeline_steps/modelling/plots.py
# writes the plot data).
METRICS_FILE = "metrics.json"
CLASS_REPORT_FILE = "classification_report.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
PREDICTIONS_CSV = "predictions.csv"
ROC_FILE = "roc.json"
PRECISION_RECALL_FILE = "precision_recall.json"
# The local pipeline's table: the dataset stage writes it, prepare reads it.
LOCAL_TABLE = "data/${data.name}.csv"


class Input(NamedTuple):
    """One argument of a step's command line, and where its value comes from (exactly one of them)."""

    flag: str
    step: str | None = None  # that step's output location
    result: tuple[str, str] | None = None  # (task, field) of a task's result in the same run
    param: str | None = None  # a run's Param (Airflow only)
    file: str | None = None  # a file of the local pipeline (DVC only; ${...} is a params.yaml key)


class Output(NamedTuple):
    """A file a local (DVC) stage declares as its output; ``{out}`` is the step's output location."""

    path: str
    cache: bool = True
    metrics: bool = False


@dataclass(frozen=True)
class Step:  # pylint: disable=too-many-instance-attributes  # one flat record of one step
    """One step of the pipeline: a module, an image, a task, a stage, all by this name."""

    name: str
    doc: str
    lock: str | None  # the dependency group its image installs (pyproject extra); None: no image
    inputs: tuple[Input, ...] = ()
    output: str | None = RUN_OUTPUT  # its --output location under the runs bucket; None: none
    dag: str | None = None  # the DAG it is a task of
    waits_for: tuple[str, ...] = ()  # the tasks of its DAG it starts after (the graph)
    heavy: bool = False  # on CT_HEAVY_QUEUE, with the workers that have the memory
    sensor: bool = False  # a check a run repeats while it waits for data (an Airflow sensor)
    when: str | None = None  # the setting (a run's Param) that turns it on; off, the task is skipped
    skipped: str | None = None  # what its skip means for the run, in `make run`'s line
    local: bool = False  # a stage of the local pipeline (dvc.yaml)
    params: tuple[str, ...] = ()  # the params.yaml keys its stage reads (DVC re-runs it when they change)
    outputs: tuple[Output, ...] = ()  # its stage's outputs (default: its whole output folder)
    local_args: tuple[str, ...] = ()  # its stage's own arguments (${...}: a params.yaml key)
    service: bool = False  # a service of the stack (compose), not a task: no worker runs its image
    s3_identity: str = "PIPELINE"  # its task signs with the secrets S3_<this>_ACCESS_KEY and _SECRET_KEY
    announces: bool = False  # its task's success is an event on the data Asset (starts the training DAG)

    @property
    def module(self) -> str:
        """The module whose ``main`` is its command line."""
        return f"pipeline_steps.steps.{self.name}"

    @property
    def image(self) -> str:
        """Its image's name without the prefix (``ct-``) and tag."""
        return self.name.replace("_", "-")

    def arguments(self, value: Callable[[Input], str | None], output: str | None) -> list[str]:
        """Its command line where ``value`` gives each input's value (None: left out) and
        ``output`` is where its outputs go."""
        found = [(item.flag, value(item)) for item in self.inputs]
        arguments = [part for flag, given in found if given is not None for part in (flag, given)]
        return arguments + (["--output", output] if output is not None and self.output else [])


def _output(producer: str, flag: str) -> Input:
    return Input(flag, step=producer)


def _files(*names: str, cache: bool = True, metrics: bool = False) -> tuple[Output, ...]:
    """Files in the step's output folder, as its local stage's outputs."""
    return tuple(Output(f"{{out}}/{name}", cache=cache, metrics=metrics) for name in names)


STEPS: tuple[Step, ...] = (
    Step("dataset", "write a built-in table out as CSV (the local pipeline's first data version)",
         lock=None, output=None, local=True, params=("data.name",), outputs=(Output(LOCAL_TABLE),),
         local_args=("--name", "${data.name}", "--out", LOCAL_TABLE)),
    Step("check_data", "is a data version newer than the Staging model's published?",
         lock="check-data", output=None, dag=TRAINING_DAG, sensor=True, skipped="skipped"),
    Step("prepare", "validate one data version, count its rows and split it into train and test",
         lock="prepare", dag=TRAINING_DAG, waits_for=("check_data",), local=True,
         params=("data", "seed", "prepare"),
         inputs=(Input("--data-version", result=("check_data", "latest_version")),
                 Input("--input", file=LOCAL_TABLE))),
    Step("check_drift", "has the data drifted since the Staging model's? (Evidently)",
         lock="drift", dag=TRAINING_DAG, waits_for=("prepare",), skipped="stopped by data drift",
         inputs=(_output("prepare", "--prepared"),)),
    Step("tune", "optional: Optuna picks XGBoost's parameters on the train split, time-boxed",
         lock="train", dag=TRAINING_DAG, waits_for=("check_drift",), heavy=True, when="TUNE_ENABLED",
         local=True, params=("seed", "tune", "train", "gate.metric"),
         inputs=(_output("prepare", "--prepared"),), outputs=_files(RESULT_FILE, cache=False)),
    Step("train", "fit XGBoost on the train split; track the run and log the model",
         lock="train", dag=TRAINING_DAG, waits_for=("check_drift", "tune"), heavy=True, local=True,
         params=("seed", "train"),
         inputs=(_output("prepare", "--prepared"), _output("tune", "--tuned"))),
    Step("evaluate", "score the new model and the Staging model on the same unseen rows; the gate decides",
         lock="evaluate", dag=TRAINING_DAG, waits_for=("train",), heavy=True, local=True,
         params=("gate",),
         inputs=(_output("train", "--trained"), _output("check_drift", "--drift")),
         outputs=(*_files(CONFUSION_MATRIX_FILE, CLASS_REPORT_FILE, RESULT_FILE),
                  *_files(PREDICTIONS_CSV, ROC_FILE, PRECISION_RECALL_FILE, cache=False),
                  *_files(METRICS_FILE, cache=False, metrics=True))),
    Step("register", "register the evaluated model as the new Staging version, if the gate passed it",
         lock="register", dag=TRAINING_DAG, waits_for=(GATE_TASK,), local=True,
         inputs=(_output("evaluate", "--evaluated"),), outputs=_files(RESULT_FILE, cache=False)),
    Step("promote", "serve the approved version as Production",
         lock="register", dag=TRAINING_DAG, waits_for=(APPROVAL_TASK,),
         inputs=(Input("--version", result=("register", "version")),
                 Input("--approved-by", result=(APPROVAL_TASK, APPROVED_BY_KEY)))),
    Step("rollback", "serve the version approved before the current Production one again",
         lock="register", dag=ROLLBACK_DAG, output=None, skipped="skipped"),
    Step("predict", "score a table with the Production model; one prediction (or a reason) per row",
         lock="train", dag=SCORING_DAG, heavy=True, output="predictions/{run}", skipped="skipped",
         inputs=(Input("--input", param="input"),)),
    Step("monitor_production", "read the prediction log and its labels since the last run: drift, classes, "
         "live metric, triggers (Evidently)", lock="drift", dag=MONITOR_DAG, output="monitoring/{run}",
         skipped="skipped"),
    # make publish and make score run it too (infra/scripts/publish.sh); in the monitor's DAG it publishes
    # the labelled rows of a window that set off the decay trigger, with the keys that write the data.
    Step("publish_data", "publish a table as a new data version (DVC push), and tell Airflow; after a "
         "monitor run: its labelled rows, when they set off a retraining", lock="publish", output=None,
         dag=MONITOR_DAG, waits_for=("monitor_production",), skipped="no new data version",
         inputs=(Input("--append-labelled", step="monitor_production"),), s3_identity="PUBLISHER",
         announces=True),
    # Not a task: a service of the stack (compose's model-server), in an image built like the steps'.
    Step("model_server", "answer prediction requests with the Production model, following its alias",
         lock="serve", output=None, service=True),
)
BY_NAME = {step.name: step for step in STEPS}


def step(name: str) -> Step:
    """The step of that name; a KeyError naming the steps there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no step {name!r}; the steps are: {', '.join(BY_NAME)}") from None


def of_dag(dag_id: str) -> list[Step]:
    """The steps of one DAG, in pipeline order."""
    return [found for found in STEPS if found.dag == dag_id]


def making(name: str) -> list[Step]:
    """The step and the steps whose outputs it reads, and theirs, in pipeline order: those that run
    on local files, and not optional ones (what re-runs a model's numbers: make reproduce)."""
    wanted, todo = set(), [name]
    while todo:
        found = BY_NAME[todo.pop()]
        if found.name in wanted or found.when or not found.local:
            continue
        wanted.add(found.name)
        todo += [item.step for item in found.inputs if item.step and BY_NAME[item.step].dag == found.dag]
    return [found for found in STEPS if found.name in wanted]


# The training DAG's tasks that are not steps, and the tasks each starts after.
OTHER_TASKS = {TRAINING_DAG: {GATE_TASK: ("evaluate",), STOP_TASK: (GATE_TASK,), APPROVAL_TASK: ("register",),
                              KEEP_TASK: (APPROVAL_TASK,)}}


def graph(dag_id: str) -> dict[str, tuple[str, ...]]:
    """Each task of a DAG (its steps, then its other tasks) and the tasks it starts after."""
    return {**{found.name: found.waits_for for found in of_dag(dag_id)}, **OTHER_TASKS.get(dag_id, {})}


def _images() -> str:
    """One line per step image: its image name, its lock, its step name, and whether a worker runs it
    (``task``) or the stack does (``service``) (images/lib.sh reads them)."""
    return "\n".join(f"{found.image} {found.lock} {found.name} {'service' if found.service else 'task'}"
                     for found in STEPS if found.lock)


if __name__ == "__main__":
    if sys.argv[1:] != ["images"]:
        raise SystemExit("usage: python -m pipeline_steps.pipeline images")
    print(_images())
