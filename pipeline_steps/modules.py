"""The package's own modules a module imports, directly or not: what a step's image, a logged model
and a DVC stage carry or depend on, and no more.

``python -m pipeline_steps.modules OUT`` lays out, for each step that has an image
(pipeline_steps/pipeline.py), only the files its module reaches, under
``OUT/<step>/pipeline_steps/`` (the image build's code stage): a change to one
step's code changes only the images that import it, and the others keep their
cached layers. ``python -m pipeline_steps.modules OUT MODULE...`` lays out those
modules' (what the Airflow image carries of the package: the declarations the DAGs
read). Standard library only: it runs before any environment exists.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

PACKAGE = "pipeline_steps"
ROOT = Path(__file__).resolve().parent


def _file(module: str) -> Path | None:
    """The file of a dotted module of the package (a module or a subpackage's __init__)."""
    parts = module.split(".")[1:]
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """The package's modules a file imports anywhere (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name.startswith(f"{PACKAGE}.") and _file(name))
    return found


def closure(module: str) -> list[Path]:
    """The files ``module`` reaches through imports, with every package's __init__.py on the way,
    relative to the package's parent folder, sorted."""
    if _file(module) is None:
        raise SystemExit(f"modules: no module {module} under {ROOT}")
    todo, seen = [module], set()
    while todo:
        name = todo.pop()
        path = _file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(_imports(path))
    files = {_file(name) for name in seen}
    for path in list(files):
        for parent in path.relative_to(ROOT).parents:
            files.add(ROOT / parent / "__init__.py")
    return sorted(path.relative_to(ROOT.parent) for path in files if path)


def copy(module: str, out: Path) -> list[Path]:
    """Copy ``module``'s closure under ``out`` (as ``out/pipeline_steps/...``); the files copied."""
    files = closure(module)
    for relative in files:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT.parent / relative, target)
    return files


def main(out: str, *named: str) -> None:
    """Each imaged step's code under ``out/<step>/`` (its module, and ``python -m pipeline_steps``, which
    dispatches by name); or, with module names, those modules' code under ``out``."""
    from pipeline_steps.pipeline import STEPS  # pylint: disable=import-outside-toplevel

    if named:
        files = {path for module in named for path in copy(module, Path(out))}
        print(f"{', '.join(named)}: {len(files)} files")
        return
    for step in STEPS:
        if step.lock:
            copy(f"{PACKAGE}.__main__", Path(out, step.name))
            files = copy(step.module, Path(out, step.name))
            print(f"{step.name}: {len(files)} files")


if __name__ == "__main__":
    main(*sys.argv[1:])
