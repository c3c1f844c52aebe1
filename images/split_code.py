"""Builder helper: lay out, per step module, only the package files it imports.

``python split_code.py SRC OUT MODULE...`` copies ``SRC/pipeline_steps/<m>.py``
for every module ``m`` that MODULE imports, directly or not, to
``OUT/MODULE/pipeline_steps/``. Each step image copies its own tree, so a change
to one step's code changes only the images that import it and the others keep
their cached layers.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

PACKAGE = "pipeline_steps"


def imported_modules(path: Path) -> set[str]:
    """Names of the package modules that the file imports anywhere (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n.split(".")[1] for n in names if n.startswith(f"{PACKAGE}."))
    return found


def closure(package_dir: Path, module: str) -> set[str]:
    """``module`` and every package module it reaches through imports."""
    todo, seen = [module, "__init__"], set()
    while todo:
        name = todo.pop()
        path = package_dir / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        todo.extend(imported_modules(path))
    return seen


def main(src: str, out: str, *modules: str) -> None:
    package_dir = Path(src) / PACKAGE
    for module in modules:
        if not (package_dir / f"{module}.py").is_file():
            raise SystemExit(f"split_code: no module {package_dir / module}.py")
        target = Path(out) / module / PACKAGE
        target.mkdir(parents=True)
        names = sorted(closure(package_dir, module))
        for name in names:
            shutil.copy2(package_dir / f"{name}.py", target / f"{name}.py")
        print(f"{module}: {', '.join(names)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
