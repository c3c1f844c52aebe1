#!/usr/bin/env python3
"""`make feedback FILE=labels.csv`: tell the stack's model server the true labels of rows it answered.

The file is a CSV table with a header row, ``request_id`` and ``label`` (and
``row``, the record's place in its request, where a request had several: 0 for the
first), or a JSON list of such objects. The server checks each label against the
model's classes and stores them beside the prediction log, where monitoring joins
them with the predictions. One line says how many were stored, and where. The key
(SERVE_API_KEY) and port (SERVE_PORT) come from the environment, else .env.
Standard library only: it runs with any python3 on the host.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # predict.py, beside it
# pylint: disable=wrong-import-position
from predict import ask, connection, given_file, parser_for  # noqa: E402

COLUMNS = ("request_id", "label", "row")


def labels_of(path: Path) -> list[dict[str, Any]]:
    """The file's labels as the server takes them; a ValueError naming what is wrong with it."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        found = json.loads(text)
        if not isinstance(found, list):
            raise ValueError(f"{path} holds no JSON list of labels")
        return found
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in COLUMNS[:2] if name not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)} (its header: "
                         f"{','.join(reader.fieldnames or [])}); it needs request_id,label and, "
                         "for a request of several records, row")
    return [{name: value for name, value in row.items() if name in COLUMNS and value not in (None, "")}
            for row in reader]


def main(argv: list[str] | None = None) -> int:
    """Send FILE's labels; 0 when the server stored them."""
    args = parser_for(__doc__, "a CSV table (request_id,label[,row]) or a JSON list of labels"
                      ).parse_args(argv)
    try:
        path = given_file(args.file, "feedback: name a file of labels: make feedback FILE=labels.csv")
        labels = labels_of(path)
        url, key = connection(args.env_file, "feedback")
    except ValueError as exc:
        print(f"error: feedback: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        stored = ask(url, key, json.dumps(labels).encode(), "application/json", path="/feedback")
    except RuntimeError as exc:
        print(f"error: feedback: {exc}", file=sys.stderr)
        return 1
    print(f"stored {stored['stored']} label(s) of {stored['model_name']} predictions: {stored['uri']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
