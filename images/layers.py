#!/usr/bin/env python3
"""Split the step locks into shared layers, so step images share their heavy dependencies.

Every step installs into the same virtualenv path (/opt/venv), and each image is
the same chain of layers (core, then science, then tabular) with only what is
its own on top. Docker reuses a layer when its parent and content are the same,
so the five-hundred megabytes of numpy, scipy, pyarrow and scikit-learn are
stored and pulled once, not once per step.

A layer holds the pins that at least two of its locks share (all of them when
it has one lock), minus what its ancestors hold and minus any package its locks
pin at different versions (the drift lock's pandas<3 stays its own). What a lock
needs beyond its chain is its own layer. Every pin keeps its hashes, so the
layers are installed exactly as the locks say.

Stdlib only: it runs in the builder stage before any venv exists.
Usage: layers.py LOCK_DIR OUT_DIR  (writes OUT_DIR/<layer>.txt)
       layers.py --show LOCK_DIR    (the plan, for people)
       layers.py --deepest LOCK     (the layer that lock's image is built on; images/lib.sh)
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# layer -> (parent layer, the locks it is shared by). Order is the build order.
LAYERS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "core": (None, ("check-data", "register")),
    "science": ("core", ("prepare", "publish", "train", "evaluate", "drift", "serve")),
    "tabular": ("science", ("prepare", "publish", "train", "evaluate", "serve")),
}
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def pin(block: str) -> str:
    """name==version, without the environment marker or hashes."""
    return block.split("\n", 1)[0].split(";", 1)[0].strip(" \\")


def widest(blocks: list[str]) -> str:
    """Of one pin's blocks, the one with no marker when there is one: it installs wherever the others do."""
    return min(blocks, key=lambda block: ";" in block.split("\n", 1)[0])


def read_lock(path: Path) -> dict[str, str]:
    """Requirement name -> its whole block (pin, marker, hashes), as uv export wrote it."""
    blocks: dict[str, str] = {}
    name = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _NAME.match(line)
        if match:
            name = match.group(1).lower().replace("_", "-")
            blocks[name] = line
        elif name and line.startswith("    --hash="):
            blocks[name] += "\n" + line
        elif not line.startswith("    "):
            name = None
    return blocks


def chain(layer: str) -> list[str]:
    """The layer and its ancestors, root first."""
    parent = LAYERS[layer][0]
    return (chain(parent) if parent else []) + [layer]


def deepest_layer(lock: str) -> str:
    """The last layer a lock's image is built on."""
    return [name for name, (_, locks) in LAYERS.items() if lock in locks][-1]


def plan(locks: dict[str, dict[str, str]]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Layer (and lock's own layer, named after the lock) -> blocks; lock -> its deepest shared layer."""
    layers: dict[str, dict[str, str]] = {}
    for layer, (parent, members) in LAYERS.items():
        above = {name for ancestor in (chain(parent) if parent else []) for name in layers[ancestor]}
        uses = Counter(name for lock in members for name in locks[lock])
        wanted = min(2, len(members))
        layers[layer] = {}
        for name, count in sorted(uses.items()):
            blocks = [locks[lock][name] for lock in members if name in locks[lock]]
            if count >= wanted and name not in above and len({pin(block) for block in blocks}) == 1:
                layers[layer][name] = widest(blocks)
    deepest = {lock: deepest_layer(lock) for lock in locks}
    for lock, blocks in locks.items():
        shared = {name: block for layer in chain(deepest[lock]) for name, block in layers[layer].items()}
        clashes = [name for name in blocks if name in shared and pin(shared[name]) != pin(blocks[name])]
        if clashes:
            raise SystemExit(f"layers: {lock} pins {', '.join(clashes)} apart from its shared layers "
                             f"{'+'.join(chain(deepest[lock]))}; move {lock} to a layer without them")
        layers[lock] = {name: block for name, block in blocks.items() if name not in shared}
    return layers, deepest


def main(argv: list[str]) -> int:
    """Write one requirements file per layer (or show the plan, or name a lock's deepest layer)."""
    if argv[:1] == ["--deepest"]:
        print(deepest_layer(argv[1]))
        return 0
    show = argv[:1] == ["--show"]
    lock_dir = Path(argv[1] if show else argv[0])
    locks = {path.stem: read_lock(path) for path in sorted(lock_dir.glob("*.txt")) if path.stem in
             {lock for _, members in LAYERS.values() for lock in members}}
    layers, _ = plan(locks)
    if show:
        for layer, blocks in layers.items():
            print(f"{layer:12} {len(blocks):3} pins: {' '.join(sorted(blocks))}")
        return 0
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for layer, blocks in layers.items():
        text = "".join(block + "\n" for block in blocks.values())
        (out / f"{layer}.txt").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
