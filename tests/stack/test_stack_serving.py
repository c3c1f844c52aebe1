"""The model server in the stack: it follows the production alias, refuses what cannot serve, logs everything.

These run after test_stack_e2e.py on the same stack, when Production holds a version
and the registry holds others a person approved. The alias is moved here with
MLflow's admin login, as promotion and rollback move it (their DAGs are tested there):
the server follows MLflow's webhook, whatever moved the alias.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipeline_steps.modelling.production import serve
from tests.serving import LoadLoop, register_broken_version
from tests.stack.conftest import STACK_ENV, Stack, compose, stack_command
from tests.stack.test_stack_e2e import mlflow_client, production, table_to_score

MODEL = "ct-xgboost"


def rows(stack: Stack, count: int) -> list[dict]:
    """Records as a client sends them: the training table's columns, numbers as numbers."""
    table = pd.read_csv(table_to_score(stack, Path(tempfile.mkdtemp()), rows=count))
    return json.loads(table.to_json(orient="records"))


def approved_versions(stack: Stack) -> list[str]:
    """The versions a person approved (or rolled back to) at some point, oldest first."""
    found = [v for v in mlflow_client(stack).search_model_versions(f"name = '{MODEL}'")
             if "production.promoted_at" in v.tags]
    return [v.version for v in sorted(found, key=lambda v: int(v.version))]


def test_make_predict_answers_a_csv_file_with_the_production_version(stack: Stack, tmp_path: Path) -> None:
    serving = production(stack).version
    stack.model_server().wait_for_version(serving, timeout=30)
    done = stack_command("make", "predict", f"FILE={table_to_score(stack, tmp_path, rows=5)}")
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "record,prediction,probability.0,probability.1", done.stdout
    assert len(lines) == 6 and lines[1].startswith("0,")
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"answered 5 record(s) with {MODEL} version {serving} (request "), done.stderr
    written = tmp_path / "answers.json"
    stack_command("make", "predict", f"FILE={table_to_score(stack, tmp_path, rows=3)}", f"OUT={written}")
    assert len(json.loads(written.read_text())["predictions"]) == 3


def test_alias_moves_under_load_serve_each_version_within_seconds_with_no_failed_request(
        stack: Stack) -> None:
    server, client = stack.model_server(), mlflow_client(stack)
    original = production(stack).version
    other = next(v for v in reversed(approved_versions(stack)) if v != original)
    served_after = []
    with LoadLoop(server, rows(stack, 10)) as loop:
        for version in (other, original, other, original):
            moved = time.monotonic()
            serve(client, MODEL, version)
            served_after.append(server.wait_for_version(version, timeout=10))
            time.sleep(1)
            first = min(at for at, _, answered, _ in loop.answers if answered == version and at > moved)
            assert first - moved < 10
    print(f"alias move -> served: {[round(s, 2) for s in served_after]} s; {len(loop.answers)} requests")
    assert loop.answers and not loop.failed, loop.failed[:3]
    assert all(len(versions) == 1 for *_, versions in loop.answers)
    assert set(loop.versions()) == {other, original}


def test_a_version_that_cannot_load_is_refused_the_old_one_keeps_serving_and_a_notification_says_so(
        stack: Stack) -> None:
    server, client = stack.model_server(), mlflow_client(stack)
    serving = production(stack).version
    broken = register_broken_version(client, MODEL, "ct-broken-on-purpose")
    try:
        with LoadLoop(server, rows(stack, 3)) as loop:
            serve(client, MODEL, broken)
            said = stack.notifications.wait_for(timeout=60, outcome="refused", model_version=broken)
            time.sleep(1)
        assert said["serving_version"] == serving and said["source"] == "model-server"
        assert f"version {serving} keeps serving" in said["text"]
        assert "cannot load" in said["reason"]
        assert not loop.failed and set(loop.versions()) == {serving}
        assert broken in server.call("GET", "/version").body["refused_versions"]
    finally:
        serve(client, MODEL, serving)
        client.delete_model_version(MODEL, broken)


def test_bad_requests_get_their_status_and_cause_and_the_server_answers_good_ones_after(stack: Stack) -> None:
    server = stack.model_server()
    good = rows(stack, 1)[0]
    column = next(iter(good))
    assert server.predict([{k: v for k, v in good.items() if k != column}]).detail.startswith(
        f"record 0 lacks column {column!r}")
    wrong = server.predict([dict(good, **{column: "not a number"})])
    assert wrong.status == 422 and f"column {column!r} must hold a number" in wrong.detail
    too_big = server.call("POST", "/predict", json.dumps([good] * 5000).encode())
    assert too_big.status == 413 and "SERVE_MAX_REQUEST_BYTES" in too_big.detail
    assert server.predict([good], key="").status == 401
    assert server.predict([good], key="not-the-key").status == 401
    assert server.predict([good]).status == 200


def test_the_servers_mlflow_login_reads_the_registry_and_cannot_change_it(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "model-server")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", stack.env["MLFLOW_SERVER_PASSWORD"])
    client = mlflow_client(stack)
    assert client.get_model_version_by_alias(MODEL, "production").version == production(stack).version
    with pytest.raises(mlflow.exceptions.MlflowException, match="(?i)permission"):
        client.set_registered_model_alias(MODEL, "production", "1")
    with pytest.raises(mlflow.exceptions.MlflowException, match="(?i)permission"):
        client.delete_model_version_tag(MODEL, production(stack).version, "production.approved_by")


def test_the_prediction_log_holds_every_request_with_its_version_also_after_docker_stop(stack: Stack) -> None:
    server = stack.model_server()
    serving = production(stack).version
    server.wait_for_version(serving, timeout=30)
    asked = rows(stack, 4)
    ids = [f"e2e-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    for request_id in ids:
        reply = server.call("POST", "/predict", json.dumps(asked).encode(),
                            headers={"X-Request-Id": request_id})
        assert reply.status == 200 and reply.body["request_id"] == request_id
    # `docker stop` at once: what was answered and not yet written is written on the way out.
    compose("stop", "model-server")
    try:
        s3 = stack.s3()
        listed = s3.list_objects_v2(Bucket="prediction-log", Prefix=f"predictions/model={MODEL}/")
        frames = [pd.read_parquet(io.BytesIO(
            s3.get_object(Bucket="prediction-log", Key=item["Key"])["Body"].read()))
            for item in listed.get("Contents", [])]
        logged = pd.concat(frames, ignore_index=True)
        mine = logged[logged["request_id"].isin(ids)]
        assert sorted(set(mine["request_id"])) == sorted(ids)
        assert len(mine) == len(ids) * len(asked)
        assert set(mine["model_version"]) == {serving} and set(mine["source"]) == {"server"}
        # Batch scoring's runs (test_stack_e2e scored tables) are in the same log.
        assert "batch" in set(logged["source"])
    finally:
        compose("start", "model-server")
    assert server.wait_for_version(serving, timeout=90) >= 0  # started again, it loads the same version
    assert STACK_ENV["SERVE_PORT"] in server.url
