"""Write the results of images/bench.sh as JSON and as a Markdown table, and check the targets.

Targets: every step image at most half the naive image, ``register`` and
``check-data`` at most a quarter, the bytes of all step images together (each
shared layer counted once, the base included, as it is in the naive image) at
most half the naive image, the warm rebuild of all step images under 30 s.
The ``--apart`` images (their own pandas<3 environment) are not in the naive image,
so they get no ratio target; their size is reported all the same.
Exits 1, after writing both files, when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

HALF, QUARTER, WARM_LIMIT_S = 0.5, 0.25, 30
SMALLEST = ("register", "check-data")


def per_image(text: str) -> dict[str, int]:
    """``"builder=3 train=4"`` -> ``{"builder": 3, "train": 4}``."""
    return {k: int(v) for k, v in (item.split("=") for item in text.split())}


def unique_bytes(layers_file: str, leave_out: list[str]) -> int:
    """Bytes of the distinct layers of the images (lines ``image key bytes``), each layer once."""
    sizes = {}
    for line in Path(layers_file).read_text(encoding="utf-8").splitlines():
        image, key, size = line.split()
        if image not in leave_out:
            sizes[key] = int(size)
    return sum(sizes.values())


def mb(size: int) -> str:
    """Bytes as megabytes, the unit `docker image ls` uses."""
    return f"{size / 1e6:,.0f} MB"


def main() -> int:
    """Write both files from the arguments; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("sizes", "layers", "mlflow-size", "base", "changed", "steps-cold-per", "steps-warm-per",
                 "rebuilt", "apart", "json", "markdown"):
        parser.add_argument(f"--{name}", required=name not in ("rebuilt", "apart"), default="")
    for name in ("naive-cold", "naive-warm", "steps-cold", "steps-warm"):
        parser.add_argument(f"--{name}", type=int, required=True)
    args = parser.parse_args()

    sizes = dict(line.split() for line in Path(args.sizes).read_text(encoding="utf-8").splitlines())
    naive = int(sizes.pop("naive"))
    steps = {name: int(size) for name, size in sizes.items()}
    apart = args.apart.split()
    checks = {
        f"{name} <= {'1/4' if name in SMALLEST else '1/2'} naive": size
        <= naive * (QUARTER if name in SMALLEST else HALF)
        for name, size in steps.items() if name not in apart
    }
    together = unique_bytes(args.layers, apart)
    together_all = unique_bytes(args.layers, [])
    checks["all step images together <= 1/2 naive"] = together <= naive * HALF
    checks[f"warm rebuild < {WARM_LIMIT_S} s"] = args.steps_warm < WARM_LIMIT_S
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "base_image": args.base,
        "sizes_bytes": {"naive": naive, **steps},
        "apart_from_naive": apart,
        "size_ratio_to_naive": {name: round(size / naive, 3) for name, size in steps.items()
                                if name not in apart},
        "all_steps_unique_bytes": together,
        "all_steps_unique_ratio_to_naive": round(together / naive, 3),
        "all_steps_with_apart_unique_bytes": together_all,
        "naive_plus_apart_bytes": naive + sum(steps[name] for name in apart),
        "mlflow_server_bytes": int(args.mlflow_size),
        "cold_build_s": {"naive": args.naive_cold, "steps_total": args.steps_cold,
                         "steps": per_image(args.steps_cold_per)},
        "warm_rebuild": {
            "change": f"one comment line appended to {args.changed}",
            "naive_s": args.naive_warm,
            "steps_total_s": args.steps_warm,
            "steps_s": per_image(args.steps_warm_per),
            "step_images_changed": args.rebuilt.split(),
        },
        "targets": checks,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    lines = [
        "# Image sizes and build times",
        "",
        f"`make bench-images` on {result['date'][:10]}, {result['machine']['cpus']} CPUs, "
        f"base `{args.base}`. Cold: fresh base, empty cache. Warm: after appending one comment "
        f"line to `{args.changed}`.",
        "",
        "| image | size | vs naive | cold build (s) | warm rebuild (s) |",
        "|---|---:|---:|---:|---:|",
        f"| naive (single stage, all steps{' but ' + ', '.join(apart) if apart else ''}, regular xgboost) "
        f"| {mb(naive)} | 1.00 "
        f"| {args.naive_cold} | {args.naive_warm} |",
    ]
    cold, warm = per_image(args.steps_cold_per), per_image(args.steps_warm_per)
    but_apart = f" but {', '.join(apart)}" if apart else ""
    lines.append(f"| shared builder stage (not shipped) | | | {cold.get('builder', '')} "
                 f"| {warm.get('builder', '')} |")
    for name, size in steps.items():
        ratio = "not in naive" if name in apart else f"{size / naive:.2f}"
        lines.append(f"| ct-{name} | {mb(size)} | {ratio} | {cold.get(name, '')} "
                     f"| {warm.get(name, '')} |")
    lines += [
        f"| **all step images** | | | **{args.steps_cold}** | **{args.steps_warm}** |",
        f"| **all step images together** (shared layers and base counted once){but_apart} "
        f"| **{mb(together)}** | **{together / naive:.2f}** | | |",
        *([f"| all step images together, with {', '.join(apart)} | {mb(together_all)} | | | |"]
          if apart else []),
        "",
        "The steps share their dependencies: every image is the base, the same `core` layer (MLflow client,",
        "boto3), then `science` (numpy, scipy, pyarrow, scikit-learn, xgboost) and `tabular` (pandas) where",
        "it needs them, and only its own packages and code on top (images/layers.py). A host or a registry",
        "stores each layer once.",
        "",
        f"The MLflow server image, as `make build-images` built it: {mb(int(args.mlflow_size))} "
        "(882 MB before its lock left out what `mlflow server` never imports).",
        "",
        "Step images whose content changed on the warm rebuild: "
        f"{', '.join(args.rebuilt.split()) or 'none'}.",
        "",
        *([f"Not in the naive image, so no ratio target: {', '.join(apart)} (its own pandas<3 "
           "environment cannot share one with the other steps).", ""] if apart else []),
        "| target | met |",
        "|---|---|",
        *(f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in checks.items()),
        "",
    ]
    Path(args.markdown).write_text("\n".join(lines), encoding="utf-8")
    missed = [name for name, ok in checks.items() if not ok]
    if missed:
        print(f"bench: targets missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
