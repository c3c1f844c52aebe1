"""Talking to the model server as a client does, and a version made to fail: for the unit and stack tests."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from pipeline_steps.modelling.registry import RegistryModel


@dataclass(frozen=True)
class Reply:
    """The status and JSON body of one answer (``None`` status: no answer at all)."""

    status: int | None
    body: Any

    @property
    def detail(self) -> str:
        """The one line a refusal carries."""
        return self.body.get("detail", "") if isinstance(self.body, dict) else str(self.body)


@dataclass(frozen=True)
class ServerClient:
    """The model server at ``url``, asked with ``key``."""

    url: str
    key: str

    def call(self, method: str, path: str, body: bytes | None = None, key: str | None = None,
             content_type: str = "application/json", headers: dict[str, str] | None = None) -> Reply:
        """One request; the reply, whatever its status."""
        sent = {"Content-Type": content_type, **(headers or {})}
        if (key if key is not None else self.key):
            sent["Authorization"] = f"Bearer {key if key is not None else self.key}"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, _json(response.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _json(exc.read()))
        except (urllib.error.URLError, OSError) as exc:
            return Reply(None, str(exc))

    def predict(self, records: Any, **kwargs: Any) -> Reply:
        """POST records as JSON to /predict."""
        return self.call("POST", "/predict", json.dumps(records).encode(), **kwargs)

    def served_version(self) -> str | None:
        """The version /version says answers (None: none yet)."""
        reply = self.call("GET", "/version")
        return reply.body.get("model_version") if reply.status == 200 else None

    def versions_by_process(self) -> set[str]:
        """The version each server process answers with, from /metrics (one gauge per process)."""
        text = self.call("GET", "/metrics").body
        found = {line.rsplit(" ", 1)[1] for line in str(text).splitlines()
                 if line.startswith("ct_model_version{")}
        return {str(int(float(value))) for value in found}

    def wait_for_version(self, version: str, timeout: float = 60) -> float:
        """Seconds until every server process answers with ``version`` (each follows the alias on its
        own: one may swap a moment before another); fails after ``timeout``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.served_version() == version and self.versions_by_process() == {version}:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"the server did not serve version {version} within {timeout} s in every "
                             f"process (they serve {self.versions_by_process()}; /version: "
                             f"{self.call('GET', '/version')})")


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


@dataclass
class LoadLoop:
    """Requests in a loop, in a thread, while something else happens: what each one got back."""

    client: ServerClient
    records: list[dict[str, Any]]
    answers: list[tuple[float, int | None, str | None, set[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LoadLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            reply = self.client.predict(self.records)
            version = reply.body.get("model_version") if isinstance(reply.body, dict) else None
            # Each row's version is the response's; a mix would show as two versions in one answer.
            versions = {version} if reply.status == 200 else set()
            self.answers.append((time.monotonic(), reply.status, version, versions))

    @property
    def failed(self) -> list[tuple[float, int | None, str | None, set[str]]]:
        """Answers that were not 200."""
        return [answer for answer in self.answers if answer[1] != 200]

    def versions(self) -> Counter[str | None]:
        """How many answers each version gave."""
        return Counter(answer[2] for answer in self.answers)


def register_broken_version(client: Any, name: str, experiment: str) -> str:
    """Register a version of ``name`` whose model cannot be loaded (its pickle is not one); its number.

    It goes to the client's MLflow server, whatever this process's default tracking URI is.
    """
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(client.tracking_uri)
    mlflow.set_registry_uri(client.tracking_uri)
    try:
        mlflow.set_experiment(experiment)
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
            broken = Path(tmp, "model.pkl")
            broken.write_bytes(b"this is not a pickled model")
            logged = mlflow.pyfunc.log_model(name="model", python_model=RegistryModel(),
                                             artifacts={"model": str(broken)}, pip_requirements=[])
            run_id = run.info.run_id
        version = mlflow.register_model(logged.model_uri, name)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    client.set_model_version_tag(name, str(version.version), "broken_on_purpose", run_id)
    return str(version.version)
