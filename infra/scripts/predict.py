#!/usr/bin/env python3
"""`make predict FILE=rows.csv`: ask the stack's model server, print (or write) its answers.

The file is sent as it is: a CSV table (read by the server as training reads one)
or a JSON list of records. The answers are printed as CSV, one row per record:
the label, then each class's probability; with OUT=answers.csv (or .json) they
are written there instead. The last line says which model version answered. The
key (SERVE_API_KEY) and port (SERVE_PORT) come from the environment, else .env.
Standard library only: it runs with any python3 on the host.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script: the package beside it
# pylint: disable=wrong-import-position
from pipeline_steps.settings import read_env_file

TIMEOUT_SECONDS = 60


def content_type(path: Path) -> str:
    """What the server is told the file is: JSON by its name, else CSV."""
    return "application/json" if path.suffix.lower() == ".json" else "text/csv"


def parser_for(doc: str, file_help: str) -> argparse.ArgumentParser:
    """A client's command line: the file it sends, and the .env file it reads the key from."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("file", help=file_help)
    parser.add_argument("--env-file", default=os.environ.get("ENV_FILE") or str(REPO / ".env"))
    return parser


def given_file(value: str, usage: str) -> Path:
    """The file named, or a RuntimeError saying how to name one."""
    if not value or not Path(value).is_file():
        raise RuntimeError(f"{usage} (not {value!r})")
    return Path(value)


def connection(env_file: str, command: str) -> tuple[str, str]:
    """The server's URL and key, from the environment, else the .env file; a RuntimeError naming
    what is missing."""
    env_path = Path(env_file)
    env = read_env_file(env_path) if env_path.is_file() else {}
    key = os.environ.get("SERVE_API_KEY") or env.get("SERVE_API_KEY", "")
    if not key:
        raise RuntimeError(f"{command}: no SERVE_API_KEY in the environment or {env_path}: run make up first")
    return f"http://localhost:{os.environ.get('SERVE_PORT') or env.get('SERVE_PORT') or '8000'}", key


def ask(url: str, key: str, body: bytes, media: str, path: str = "/predict") -> dict[str, Any]:
    """POST the body to the server's ``path``; the answer, or a RuntimeError with the server's one line."""
    request = urllib.request.Request(f"{url}{path}", data=body, method="POST", headers={
        "Content-Type": media, "Authorization": f"Bearer {key}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail)["detail"]
        except (ValueError, KeyError, TypeError):
            pass
        raise RuntimeError(f"the model server answered HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"the model server is not answering at {url} ({getattr(exc, 'reason', exc)}): "
                           "make up starts it") from None


def as_csv(answer: dict[str, Any]) -> str:
    """The answers as CSV: record, label, then one probability column per class."""
    predictions = answer["predictions"]
    classes = list(predictions[0]["probabilities"]) if predictions else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record", "prediction", *(f"probability.{name}" for name in classes)])
    for row, found in enumerate(predictions):
        writer.writerow([row, found["label"], *(f"{found['probabilities'][name]:.6f}" for name in classes)])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Send FILE, print or write the answers; 0 when the server answered."""
    parser = parser_for(__doc__, "a CSV table with a header row, or a JSON list of records")
    parser.add_argument("--out", default="", help="write the answers here (.json: as the server gave them; "
                        "else CSV) instead of printing them")
    args = parser.parse_args(argv)
    try:
        path = given_file(args.file, "predict: name a file to send: make predict FILE=rows.csv")
        url, key = connection(args.env_file, "predict")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        answer = ask(url, key, path.read_bytes(), content_type(path))
    except RuntimeError as exc:
        print(f"error: predict: {exc}", file=sys.stderr)
        return 1
    if args.out:
        text = json.dumps(answer, indent=1) if args.out.endswith(".json") else as_csv(answer)
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(as_csv(answer))
    where = f" into {args.out}" if args.out else ""
    print(f"answered {len(answer['predictions'])} record(s){where} with {answer['model_name']} version "
          f"{answer['model_version']} (request {answer['request_id']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
