"""Publishing a data version announces it to Airflow, so the DAG on its Asset starts at once.

Real S3 and DVC; Airflow's REST API is a real HTTP server started by the test
that answers the three calls publish makes and records them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipeline_steps.data import tables
from pipeline_steps.steps import publish_data
from pipeline_steps.cli import EXIT_OK, EXIT_PERMANENT, EXIT_RETRYABLE
from pipeline_steps.settings import load_settings
from pipeline_steps.services.storage import Storage
from tests.services import free_port
from tests.unit.http_stub import Answer, Request, Stub, http_stub

USERNAME, PASSWORD, TOKEN = "admin", "airflow-password", "jwt-for-admin"
EVENT_ID = 42
CHURN_CSV = b"tenure,charges,churned\n" + b"".join(
    f"{i},{20 + i * 3},{i % 2}\n".encode() for i in range(12)
)


class FakeAirflow:
    """The part of Airflow 3's REST API that publish uses, holding the given assets."""

    def __init__(self, assets: list[dict]) -> None:
        self.assets = assets

    def __call__(self, request: Request) -> Answer:
        if (request.method, request.path) == ("POST", "/auth/token"):
            if request.json() != {"username": USERNAME, "password": PASSWORD}:
                return Answer.json(401, {"detail": "Invalid credentials"})
            return Answer.json(201, {"access_token": TOKEN})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Answer.json(401, {"detail": "Not authenticated"})
        if (request.method, request.path) == ("GET", "/api/v2/assets"):
            found = [a for a in self.assets if str(request.query("uri_pattern")) in a["uri"]]
            return Answer.json(200, {"assets": found, "total_entries": len(found)})
        if (request.method, request.path) == ("POST", "/api/v2/assets/events"):
            event = request.json()
            return Answer.json(200, {"id": EVENT_ID, "timestamp": "2026-01-01T00:00:00Z", **event})
        return Answer.json(404, {"detail": "Not Found"})


@pytest.fixture
def dataset(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:  # pylint: disable=unused-argument
    """A churn table under a name of its own, so each test starts with nothing published."""
    name = f"churn_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DATASET_NAME", name)
    monkeypatch.setenv("TARGET_COLUMN", "churned")
    return name


@pytest.fixture
def pointer_uri(dataset: str) -> str:  # pylint: disable=unused-argument
    return load_settings().published_pointer_uri


@pytest.fixture
def airflow(pointer_uri: str, monkeypatch: pytest.MonkeyPatch):
    """Airflow with the DAG's asset (and one whose URI merely contains it), configured for publish."""
    assets = [{"id": 6, "uri": f"{pointer_uri}.old"}, {"id": 7, "uri": pointer_uri}]
    with http_stub(FakeAirflow(assets)) as stub:
        set_airflow(monkeypatch, stub.url)
        yield stub


def set_airflow(monkeypatch: pytest.MonkeyPatch, url: str, password: str = PASSWORD) -> None:
    monkeypatch.setenv("AIRFLOW_API_URL", url)
    monkeypatch.setenv("AIRFLOW_API_USERNAME", USERNAME)
    monkeypatch.setenv("AIRFLOW_API_PASSWORD", password)


def publish_file(tmp_path: Path, payload: bytes = CHURN_CSV) -> int:
    path = tmp_path / "churn.csv"
    path.write_bytes(payload)
    return publish_data.main(["--file", str(path)])


def failure(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line; nothing on stdout."""
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_publishing_announces_the_version_on_the_asset_of_its_pointer(
    airflow: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: str,
) -> None:
    assert publish_file(tmp_path) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    md5 = tables.md5_hex(CHURN_CSV)
    assert (result["md5"], result["path"], result["dataset"]) == (md5, "churn.csv", dataset)
    assert (result["announced"], result["asset_event_id"]) == (True, EVENT_ID)

    token, lookup, event = airflow.requests
    assert (token.method, token.path) == ("POST", "/auth/token")
    assert lookup.query("uri_pattern") == load_settings().published_pointer_uri
    assert (event.method, event.path) == ("POST", "/api/v2/assets/events")
    assert event.headers["authorization"] == f"Bearer {TOKEN}"
    assert event.json() == {"asset_id": 7, "extra": {"md5": md5, "dataset": dataset, "path": "churn.csv"}}


def test_without_an_airflow_api_url_nothing_is_announced(
    airflow: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, store: Storage, pointer_uri: str,
) -> None:
    for name in ("AIRFLOW_API_URL", "AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD"):
        monkeypatch.delenv(name)
    assert publish_file(tmp_path) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert (result["announced"], result["asset_event_id"]) == (False, None)
    assert store.read_json(pointer_uri)["md5"] == tables.md5_hex(CHURN_CSV)
    assert not airflow.requests


def test_a_file_that_fails_validation_is_neither_published_nor_announced(
    airflow: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str], store: Storage, pointer_uri: str,
) -> None:
    assert publish_file(tmp_path, b"tenure,charges,label\n1,2,0\n2,3,1\n") == EXIT_PERMANENT
    assert "target column 'churned' not found in churn.csv" in failure(capsys)
    assert not store.exists(pointer_uri)
    assert not airflow.requests


def test_when_airflow_is_down_the_version_is_still_published_and_a_retry_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    store: Storage, dataset: str, pointer_uri: str,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    set_airflow(monkeypatch, url)
    assert publish_file(tmp_path) == EXIT_RETRYABLE
    md5 = tables.md5_hex(CHURN_CSV)
    line = failure(capsys)
    assert line.startswith(f"error: publish_data: published {dataset} version {md5}, "
                           f"but Airflow unreachable at {url} (")
    assert line.endswith(": the daily run will pick it up")
    assert store.read_json(pointer_uri)["md5"] == md5


def test_a_refused_login_is_named_and_not_retried(
    airflow: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, store: Storage, pointer_uri: str,
) -> None:
    set_airflow(monkeypatch, airflow.url, password="wrong")
    assert publish_file(tmp_path) == EXIT_PERMANENT
    assert f"but Airflow at {airflow.url} answered POST /auth/token with HTTP 401" in failure(capsys)
    assert store.exists(pointer_uri)
    assert len(airflow.requests) == 1


def test_an_asset_airflow_does_not_know_yet_is_named_and_not_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    store: Storage, pointer_uri: str,
) -> None:
    with http_stub(FakeAirflow([{"id": 6, "uri": f"{pointer_uri}.old"}])) as stub:
        set_airflow(monkeypatch, stub.url)
        assert publish_file(tmp_path) == EXIT_PERMANENT
    line = failure(capsys)
    assert f"but Airflow at {stub.url} has no asset {pointer_uri} (is the DAG" in line
    assert line.endswith(": the daily run will pick it up")
    assert store.exists(pointer_uri)
    assert [r.path for r in stub.requests] == ["/auth/token", "/api/v2/assets"]


def test_a_file_given_on_stdin_is_published_under_the_given_name(
    store: Storage, pointer_uri: str
) -> None:
    payload = tables.to_parquet(tables.load_table(CHURN_CSV, "churn.csv"))  # Parquet: told by its bytes
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_steps", "publish_data", "--file", "-", "--name", "churn.parquet"],
        input=payload, capture_output=True, check=False, timeout=300, env=dict(os.environ),
    )
    assert done.returncode == EXIT_OK, done.stderr.decode()
    result = json.loads(done.stdout)
    assert (result["md5"], result["path"], result["rows"]) == (tables.md5_hex(payload), "churn.parquet", 12)
    assert store.read_json(pointer_uri) == {
        k: v for k, v in result.items() if k not in publish_data.NOT_ANNOUNCED
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--file", "-"], "--name is required with --file -"),
        (["--file", "-", "--name", "../churn.csv"], "must be a plain file name such as churn.csv"),
    ],
    ids=["stdin-without-a-name", "a-name-with-a-directory"],
)
def test_stdin_needs_a_plain_file_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], store: Storage, pointer_uri: str,
) -> None:
    assert publish_data.main(argv) == EXIT_PERMANENT
    assert message in failure(capsys)
    assert not store.exists(pointer_uri)
