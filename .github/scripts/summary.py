"""Markdown for a CI job summary: each image's size and, optionally, the model's metrics.

    docker images --format '{{.Repository}}\t{{.Tag}}\t{{.Size}}' > images.tsv
    python3 .github/scripts/summary.py --images images.tsv --metrics bench/results/e2e-metrics.json

The metrics file is written by the end-to-end run when it knows how; when it is
absent the summary says so instead of failing the job. Standard library only, so
it runs on any runner's python3 before (or without) the project's environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def image_rows(lines: list[str]) -> list[tuple[str, str, str]]:
    """(repository, tag, size) per image, one row per repository: a commit tag beats `latest`."""
    rows: dict[str, tuple[str, str, str]] = {}
    for line in lines:
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 3 or not fields[0]:
            continue
        repository, tag, size = fields
        if repository not in rows or rows[repository][1] == "latest":
            rows[repository] = (repository, tag, size)
    return sorted(rows.values())


def images_markdown(lines: list[str]) -> str:
    """A table of image sizes, or a line saying there were none."""
    rows = image_rows(lines)
    if not rows:
        return "### Images\n\nno images found\n"
    table = ["| image | tag | size |", "| --- | --- | ---: |"]
    table += [f"| `{repository}` | `{tag}` | {size} |" for repository, tag, size in rows]
    return "### Images\n\n" + "\n".join(table) + "\n"


def flatten(value: object, prefix: str = "") -> list[tuple[str, object]]:
    """Nested objects as dotted keys, so any metrics layout reads as one table."""
    if isinstance(value, dict):
        items: list[tuple[str, object]] = []
        for key, inner in value.items():
            items += flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return items
    return [(prefix or "value", value)]


def shown(value: object) -> str:
    """Floats to 4 decimals; anything else as JSON, with pipes escaped for the table."""
    if isinstance(value, float):
        return f"{value:.4f}"
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|")


def metrics_markdown(path: Path) -> str:
    """The metrics JSON as a table; a line instead when the file is absent or unreadable."""
    if not path.is_file():
        return f"### Model metrics\n\nno metrics file (`{path}`)\n"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"### Model metrics\n\nunreadable metrics file `{path}`: {error}\n"
    table = ["| metric | value |", "| --- | ---: |"]
    table += [f"| {key} | {shown(value)} |" for key, value in flatten(data)]
    return f"### Model metrics\n\nfrom `{path}`\n\n" + "\n".join(table) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the summary to stdout (CI appends it to $GITHUB_STEP_SUMMARY)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True,
                        help="`docker images` output, one REPOSITORY<tab>TAG<tab>SIZE a line; - for stdin")
    parser.add_argument("--metrics", type=Path, help="metrics JSON of the end-to-end run (may be absent)")
    args = parser.parse_args(argv)
    if args.images == "-":
        lines = sys.stdin.readlines()
    else:
        lines = Path(args.images).read_text(encoding="utf-8").splitlines()
    parts = [images_markdown(lines)]
    if args.metrics is not None:
        parts.append(metrics_markdown(args.metrics))
    print("\n".join(parts), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
