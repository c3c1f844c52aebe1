"""The stack's notifier, from the model server: a refused version is said where failures are said.

The same webhook (CT_NOTIFY_WEBHOOK) and the same JSON as Airflow's notifications
(orchestration/dags/ct_tasks/notify.py): ``text`` for a chat, the rest for machines.
Several server processes refuse the same version each on its own; a marker file in
the folder they share makes only the first one say it.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def refused(url: str, model_name: str, version: str, reason: str, serving: str | None,
            markers: Path | None = None) -> bool:
    """POST that a version was refused (once across processes); whether this call sent it."""
    if not url:
        return False
    if markers is not None:
        try:
            fd = os.open(markers / f"refused-{model_name}-{version}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(fd)
    keeps = f"version {serving} keeps serving" if serving else "no version is serving"
    payload = {
        "text": f"model server: {model_name} version {version} was not put in service: {reason}; {keeps}",
        "outcome": "refused",
        "reason": reason,
        "model_name": model_name,
        "model_version": version,
        "serving_version": serving,
        "source": "model-server",
    }
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10):  # nosec B310: the stack's own setting
            return True
    except (urllib.error.URLError, OSError) as exc:
        log.error("could not notify %s that version %s was refused: %s", url, version, exc)
        return False
