"""Write the files that must exist but say nothing of their own: from the declarations of the steps
(pipeline_steps/pipeline.py) and the settings (pipeline_steps/settings.py).

- ``dvc.yaml``: a stage per step that runs on local files (``Step.local``), its command
  line, dependencies (the outputs it reads and the package files its module imports),
  params and outputs; and the plots of evaluate's data;
- ``.env.example``: every setting a user sets and every secret `make up` generates;
- README's settings table, between its two markers.

``make generate`` writes them; ``make lint`` runs ``--check``, which writes nothing and
fails naming each file that is not what the declarations make. Each generated file says
so in its first lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline_steps import modules, pipeline
from pipeline_steps.pipeline import Input, Step
from pipeline_steps.settings import COMPOSE_VARIABLES, SECRETS, Declared, declared

REPO = Path(__file__).resolve().parents[2]
LOCAL_OUTPUT = "work/{step}"  # where a local stage writes (its --output)
README_START = "<!-- settings: generated from pipeline_steps/settings.py by `make generate` -->"
README_END = "<!-- end of the generated settings -->"
# dvc plots of evaluate's data files (pipeline_steps/modelling/plots.py writes them).
PLOTS = (
    ("Confusion matrix (test split)", pipeline.PREDICTIONS_CSV,
     {"template": "confusion", "x": "actual", "y": "predicted"}),
    ("ROC", pipeline.ROC_FILE, {"x": "fpr", "y": "tpr"}),
    ("Precision-recall", pipeline.PRECISION_RECALL_FILE, {"x": "recall", "y": "precision"}),
)


def _local(name: str) -> Step | None:
    found = pipeline.BY_NAME.get(name)
    return found if found and found.local else None


def _outputs(step: Step) -> list[str]:
    """A local stage's outputs: its declared files, else its whole output folder."""
    folder = LOCAL_OUTPUT.format(step=step.name)
    return [out.path.replace("{out}", folder) for out in step.outputs] or [folder]


def local_value(item: Input) -> str | None:
    """An input's value in the local pipeline: a local stage's output folder, or a local file."""
    if item.file:
        return item.file
    return LOCAL_OUTPUT.format(step=item.step) if item.step and _local(item.step) else None


def _stage(step: Step) -> dict[str, Any]:
    arguments = step.arguments(local_value, LOCAL_OUTPUT.format(step=step.name))
    deps = [path for item in step.inputs if local_value(item) is not None
            for path in ([item.file] if item.file else _outputs(pipeline.BY_NAME[str(item.step)]))]
    code = [str(path) for path in modules.closure(step.module)]
    stage: dict[str, Any] = {"cmd": " ".join(["python -m pipeline_steps", step.name, *step.local_args,
                                              *arguments])}
    if step.params:
        stage["params"] = list(step.params)
    stage["deps"] = deps + code
    outs: list[Any] = []
    metrics: list[Any] = []
    for out in step.outputs or ():
        path = out.path.replace("{out}", LOCAL_OUTPUT.format(step=step.name))
        entry: Any = path if out.cache else {path: {"cache": False}}
        (metrics if out.metrics else outs).append(entry)
    stage["outs"] = outs or [LOCAL_OUTPUT.format(step=step.name)]
    if metrics:
        stage["metrics"] = metrics
    return stage


def dvc_yaml() -> str:
    """dvc.yaml, from the local steps."""
    stages = {step.name: _stage(step) for step in pipeline.STEPS if step.local}
    evaluate = LOCAL_OUTPUT.format(step="evaluate")
    plots = [{title: {**{k: v for k, v in spec.items() if k != "y"}, "y": {f"{evaluate}/{file}": spec["y"]}}}
             for title, file, spec in PLOTS]
    header = ("# Generated from pipeline_steps/pipeline.py by `make generate`: edit the declaration, not\n"
              "# this file (`make lint` fails when it is stale). The same pipeline as the Airflow DAG, on\n"
              "# local files: `dvc repro` (`make repro`). MLflow tracks into ./mlflow.db unless\n"
              "# MLFLOW_TRACKING_URI names a server. Each stage lists the params.yaml keys it reads, so\n"
              "# `dvc exp run -S`, `dvc params diff` and `dvc exp show` see them.\n")
    return header + yaml.safe_dump({"stages": stages, "plots": plots}, sort_keys=False, width=110)


def _example(item: Declared) -> str:
    value = item.spec.kind.text(item.default)
    if item.spec.key:
        return f"# {item.name}=        # {item.spec.doc} (default: params.yaml's {item.spec.key})"
    return f"# {item.name}={value}   # {item.spec.doc}"


def env_example() -> str:
    """.env.example, from the declared settings and secrets."""
    lines = [
        "# Generated from pipeline_steps/settings.py by `make generate`: edit the declaration, not this",
        "# file. Every variable the stack reads. `make up` writes .env with random secrets on first run;",
        "# copy lines from here into .env to change the optional ones (then `make up`).",
        "",
        "# --- Secrets (generated; never commit them) ---",
        "# make up copies each into .env.secrets/NAME: the services get them as files, not as environment.",
        *(f"{secret.name}=   # {secret.doc}" for secret in SECRETS),
        "",
        "# --- Settings (defaults shown; those with a params.yaml key default to it) ---",
        *(_example(item) for item in declared() if item.spec.user_set),
        "",
        "# --- The stack itself (compose) ---",
        *(f"# {name}={default}   # {doc}" for name, default, doc in COMPOSE_VARIABLES),
    ]
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    """README's table of the settings a user sets."""
    rows = ["| setting | default | params.yaml | run Param | what it does |", "|---|---|---|---|---|"]
    for item in declared():
        if not item.spec.user_set:
            continue
        default = item.spec.kind.text(item.default)
        rows.append(f"| `{item.name}` | {f'`{default}`' if default else ''} | "
                    f"{f'`{item.spec.key}`' if item.spec.key else ''} | "
                    f"{f'`{item.spec.param}`' if item.spec.param else ''} | {item.spec.doc} |")
    return "\n".join([README_START, *rows, README_END])


def readme(current: str) -> str:
    """README with its settings table replaced by the declared one."""
    start, end = current.index(README_START), current.index(README_END) + len(README_END)
    return current[:start] + settings_table() + current[end:]


def targets() -> dict[Path, str]:
    """Each generated file and what the declarations make of it."""
    readme_path = REPO / "README.md"
    return {REPO / "dvc.yaml": dvc_yaml(), REPO / ".env.example": env_example(),
            readme_path: readme(readme_path.read_text(encoding="utf-8"))}


def main(argv: list[str] | None = None) -> int:
    """Write the generated files; with --check, exit 1 naming each that is stale."""
    parser = argparse.ArgumentParser(prog="python -m pipeline_steps.tools.generate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, content in targets().items():
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            continue
        if args.check:
            stale.append(str(path.relative_to(REPO)))
        else:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(f"generate: stale: {', '.join(stale)}; run: make generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
