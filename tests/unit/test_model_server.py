"""The model server as a process, on real local S3 and MLflow servers.

It answers with the version the production alias points at and follows the alias
while it runs, with no failed request; it refuses a version that cannot load and
keeps the old one; it refuses what it cannot answer in one line naming the cause;
and every answer reaches the prediction log, also when the server is stopped.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.serving import feedback, prediction_log, webhook
from pipeline_steps.services import tracking
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests import services
from tests.serving import LoadLoop, ServerClient, register_broken_version
from tests.unit.http_stub import Answer, http_stub
from tests.unit.pipeline_run import point_production_at, train_version

KEY = "unit-test-key"
WEBHOOK_SECRET = "unit-test-webhook-secret"


def records(rows: int = 3) -> list[dict]:
    table = pd.read_csv(io.BytesIO(builtin_csv("penguins", "species"))).drop(columns=["species"])
    return json.loads(table.dropna().head(rows).to_json(orient="records"))


@contextmanager
def model_server(env: dict[str, str], workdir: Path, **serve: str) -> Iterator[ServerClient]:
    """``python -m pipeline_steps model_server`` on a free port, stopped (SIGTERM) at the end."""
    port = services.free_port()
    settings = {"SERVE_API_KEY": KEY, "SERVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "SERVE_ALIAS_CHECK_SECONDS": "0.5", "SERVE_PROCESSES": "2", "SERVE_LOG_FLUSH_SECONDS": "1",
                **serve}
    command = [sys.executable, "-m", "pipeline_steps", "model_server", "--host", "127.0.0.1",
               "--port", str(port)]
    log_path = workdir / f"model-server-{port}.log"
    client = ServerClient(f"http://127.0.0.1:{port}", KEY)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env={**os.environ, **env, **settings}, stdout=log_file,
                                   stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
        try:
            services.wait_until(lambda: client.call("GET", "/health/live").status == 200, "model server",
                                process, log_path)
            yield client
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            print(f"--- model server log ---\n{log_path.read_text(errors='replace')[-6000:]}")


def upload(server: ServerClient, size: int) -> int:
    """POST a JSON body of ``size`` bytes to /predict, a piece at a time; the status read back (a broken
    pipe or a reset raises)."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=60)
    connection.putrequest("POST", "/predict")
    for name, value in {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json",
                        "Content-Length": str(size)}.items():
        connection.putheader(name, value)
    connection.endheaders()
    piece = b" " * (1024 * 1024)
    for start in range(0, size, len(piece)):
        connection.send(piece[:min(len(piece), size - start)])
    status = connection.getresponse().status
    connection.close()
    return status


def logged_rows(store: Storage, settings: Settings, kind: str = prediction_log.LOG_PREFIX) -> pd.DataFrame:
    """Every row of the prediction log of this test's model (or, with ``kind``, of its labels)."""
    client = store.client
    prefix = f"{kind}/model={settings.model_name}/"
    listed = client.list_objects_v2(Bucket=settings.s3_prediction_log_bucket, Prefix=prefix)
    bucket = settings.s3_prediction_log_bucket
    frames = [pd.read_parquet(io.BytesIO(store.read_bytes(f"s3://{bucket}/{item['Key']}")))
              for item in listed.get("Contents", [])]
    if not frames:
        return pd.DataFrame(columns=prediction_log.SCHEMA.names)
    return pd.concat(frames, ignore_index=True)


def test_before_any_version_is_approved_it_is_alive_not_ready_and_says_to_approve_one(
        penguins: Settings, service_env: dict[str, str], tmp_path: Path) -> None:
    with model_server(service_env, tmp_path) as server:
        health = server.call("GET", "/health")
        assert health.status == 503
        assert "no Production model of" in health.detail or "approve" in health.body["detail"]
        refused = server.predict(records())
        assert refused.status == 503
        assert refused.detail.startswith(f"no Production model of {penguins.model_name} is loaded yet: "
                                         "approve a registered version (make approve")


def test_its_api_page_loads_its_swagger_ui_from_the_server_not_from_the_internet(
        penguins: Settings, service_env: dict[str, str], tmp_path: Path) -> None:  # pylint: disable=unused-argument
    with model_server(service_env, tmp_path) as server:
        page = server.call("GET", "/docs", key="")
        linked = re.findall(r"""(?:href|src)=['"]([^'"]+)['"]""", page.body)
        assert page.status == 200 and linked and all(url.startswith("/") for url in linked), linked
        assert {url.rsplit(".", 1)[-1] for url in linked} >= {"js", "css"}
        assert all(server.call("GET", url, key="").status == 200 for url in linked)
        assert server.call("GET", "/openapi.json", key="").body["info"]["title"] == "ct model server"


def test_it_answers_each_record_with_its_label_probabilities_and_the_version_that_answered(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    version = train_version(penguins, store, run_prefix)
    point_production_at(penguins, version)
    asked = records(3)
    with model_server(service_env, tmp_path) as server:
        server.wait_for_version(version)
        reply = server.predict(asked)
        assert reply.status == 200, reply
        assert reply.body["model_name"] == penguins.model_name
        assert reply.body["model_version"] == version
        assert len(reply.body["predictions"]) == 3
        for answer in reply.body["predictions"]:
            assert answer["label"] in ("Adelie", "Chinstrap", "Gentoo")
            assert set(answer["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
            assert abs(sum(answer["probabilities"].values()) - 1) < 1e-5
            assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
        # The same rows as a CSV table get the same answers.
        table = pd.DataFrame(asked).to_csv(index=False).encode()
        as_csv = server.call("POST", "/predict", table, content_type="text/csv")
        assert as_csv.status == 200 and as_csv.body["predictions"] == reply.body["predictions"]
        # A category never seen in training is scored as missing, not refused.
        unseen = server.predict([dict(asked[0], island="Atlantis")])
        assert unseen.status == 200 and unseen.body["predictions"][0]["label"]
        described = server.call("GET", "/version").body
        assert described["model_version"] == version
        assert described["run_id"] == tracking.connect(penguins).get_model_version(
            penguins.model_name, version).run_id
        assert len(described["data_version"]) == 32 and described["loaded_at"]
        assert server.call("GET", "/health").body == {"status": "ready", "model_name": penguins.model_name,
                                                      "model_version": version}
        assert server.call("GET", "/docs", key="").status == 200


def test_when_the_alias_moves_the_new_version_serves_within_seconds_and_no_request_fails(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    first = train_version(penguins, store, f"{run_prefix}/a", seed=1)
    second = train_version(penguins, store, f"{run_prefix}/b", seed=2)
    point_production_at(penguins, first)
    with model_server(service_env, tmp_path) as server:
        server.wait_for_version(first)
        with LoadLoop(server, records(5)) as loop:
            for version in (second, first, second):
                point_production_at(penguins, version)
                assert server.wait_for_version(version, timeout=10) < 10
                time.sleep(0.5)
        assert loop.answers and not loop.failed, loop.failed[:3]
        assert all(len(answer[3]) == 1 for answer in loop.answers)  # one version per answer
        assert set(loop.versions()) == {first, second}


def test_a_version_that_cannot_load_is_refused_the_old_one_serves_on_and_a_notification_says_so(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    good = train_version(penguins, store, run_prefix)
    point_production_at(penguins, good)
    client = tracking.connect(penguins)
    broken = register_broken_version(client, penguins.model_name, penguins.mlflow_experiment_name)
    with http_stub(lambda request: Answer(200)) as receiver, \
            model_server({**service_env, "CT_NOTIFY_WEBHOOK": f"{receiver.url}/notify"}, tmp_path) as server:
        server.wait_for_version(good)
        with LoadLoop(server, records(2)) as loop:
            point_production_at(penguins, broken)
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)
        assert not loop.failed and set(loop.versions()) == {good}
        assert server.served_version() == good
        assert broken in server.call("GET", "/version").body["refused_versions"]
        assert len(receiver.requests) == 1, "each process refuses it; only one says so"
        said = receiver.requests[0].json()
        assert said["outcome"] == "refused" and said["model_version"] == broken
        assert said["serving_version"] == good
        assert f"version {broken} was not put in service: cannot load" in said["text"]
        assert f"version {good} keeps serving" in said["text"]


def test_each_bad_request_gets_its_status_and_a_line_naming_the_cause_and_good_ones_are_answered_after(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    version = train_version(penguins, store, run_prefix)
    point_production_at(penguins, version)
    good = records(1)[0]
    lacking = {k: v for k, v in good.items() if k != "island"}
    cases = [
        (server_call := "json", [lacking], 422, "record 0 lacks column 'island'"),
        ("json", [dict(good, bill_length_mm="long")], 422,
         "column 'bill_length_mm' must hold a number; record 0 has \"long\""),
        ("json", [dict(good, bill_length_mm=True)], 422, "column 'bill_length_mm' must hold a number"),
        ("json", {"island": "Biscoe"}, 422, "send a JSON list of records"),
        ("json", [], 422, "the list of records is empty"),
        ("json", [1, 2], 422, "record 0 is a JSON int, not an object"),
        ("raw", b"{not json", 422, "the body is not JSON"),
        ("csv", b"island,bill_length_mm\nBiscoe,12\n", 422, "the table lacks column(s) the model reads"),
        ("csv", pd.DataFrame([dict(good, bill_length_mm="long")]).to_csv(index=False).encode(), 422,
         "record 0: column 'bill_length_mm' holds 'long', not a number"),
        ("raw", b"[" + b" " * 2_000 + b"]", 413, "the body is larger than 1024 bytes"),
    ]
    del server_call
    with model_server(service_env, tmp_path, SERVE_MAX_REQUEST_BYTES="1024") as server:
        server.wait_for_version(version)
        for kind, body, status, said in cases:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            reply = server.call("POST", "/predict", payload,
                                content_type="text/csv" if kind == "csv" else "application/json")
            assert (reply.status, said in reply.detail) == (status, True), (body, reply)
        # More than the sockets hold: the client still sends when the answer is ready, and reads it after.
        assert upload(server, 14 * 1024 * 1024) == 413
        assert server.call("POST", "/predict", b"a", content_type="application/xml").status == 415
        no_key = server.predict([good], key="")
        assert no_key.status == 401 and "SERVE_API_KEY" in no_key.detail
        assert server.predict([good], key="wrong").status == 401
        assert server.call("GET", "/version", key="").status == 401
        assert server.call("GET", "/metrics", key="").status == 401
        # A load of bad requests leaves it answering good ones.
        for _ in range(50):
            server.predict([lacking])
        assert server.predict([good]).status == 200


def test_every_answer_reaches_the_prediction_log_also_when_the_server_is_stopped(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    version = train_version(penguins, store, run_prefix)
    point_production_at(penguins, version)
    asked = records(4)
    ids = []
    # Written only at shutdown: the flush interval is longer than the test.
    with model_server(service_env, tmp_path, SERVE_LOG_FLUSH_SECONDS="600",
                      SERVE_LOG_FLUSH_ROWS="100000") as server:
        server.wait_for_version(version)
        for _ in range(10):
            reply = server.call("POST", "/predict", json.dumps(asked).encode(),
                                headers={"X-Request-Id": f"req-{uuid.uuid4().hex[:8]}"})
            assert reply.status == 200
            ids.append(reply.body["request_id"])
        assert logged_rows(store, penguins).empty
    logged = logged_rows(store, penguins)
    assert sorted(set(logged["request_id"])) == sorted(ids)
    assert len(logged) == 10 * len(asked)
    assert set(logged["model_version"]) == {version} and set(logged["source"]) == {"server"}
    first = logged[logged["request_id"] == ids[0]].sort_values("row")
    assert [json.loads(text) for text in first["inputs"]] == asked
    assert all(json.loads(label) in ("Adelie", "Chinstrap", "Gentoo") for label in first["prediction"])
    assert first["no_prediction_reason"].isna().all()


def test_a_signed_webhook_makes_it_look_at_once_and_an_unsigned_one_is_refused(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    first = train_version(penguins, store, f"{run_prefix}/a", seed=1)
    second = train_version(penguins, store, f"{run_prefix}/b", seed=2)
    point_production_at(penguins, first)
    # Its own check comes only after a minute: what it does sooner, the webhook made it do.
    with model_server(service_env, tmp_path, SERVE_ALIAS_CHECK_SECONDS="60") as server:
        server.wait_for_version(first)
        point_production_at(penguins, second)
        body = json.dumps({"entity": "model_version_alias", "action": "created",
                           "data": {"name": penguins.model_name, "alias": "production",
                                    "version": second}}).encode()
        stamp = str(int(time.time()))
        forged = server.call("POST", "/webhooks/mlflow", body, key="", headers={
            "X-MLflow-Delivery-Id": "d1", "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": webhook.sign("not-the-secret", "d1", stamp, body)})
        assert forged.status == 401 and "signature does not match" in forged.detail
        assert server.served_version() == first
        signed = server.call("POST", "/webhooks/mlflow", body, key="", headers={
            "X-MLflow-Delivery-Id": "d2", "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": webhook.sign(WEBHOOK_SECRET, "d2", stamp, body)})
        assert signed.status == 200 and signed.body == {"checking": True}
        assert server.wait_for_version(second, timeout=10) < 10


def test_metrics_count_requests_rows_and_latency_and_show_the_version_of_each_process(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    version = train_version(penguins, store, run_prefix)
    point_production_at(penguins, version)
    with model_server(service_env, tmp_path) as server:
        server.wait_for_version(version)
        for _ in range(6):
            assert server.predict(records(2)).status == 200
        server.predict([{}])
        # Each process loads the version on its own; one may still be at it (it takes no request then).
        deadline = time.monotonic() + 30
        while True:
            lines = server.call("GET", "/metrics").body.splitlines()
            served = [line for line in lines if line.startswith("ct_model_version{")]
            if all(line.endswith(f" {float(version)}") for line in served) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert 'ct_predict_requests_total{status="200"} 6.0' in lines
    assert 'ct_predict_requests_total{status="422"} 1.0' in lines
    assert "ct_predict_rows_total 12.0" in lines
    assert "ct_predict_latency_seconds_count 7.0" in lines
    assert len(served) == 2 and all(line.endswith(f" {float(version)}") for line in served)


def test_batch_scoring_logs_its_rows_in_the_same_format(
        penguins: Settings, store: Storage, run_prefix: str) -> None:
    from pipeline_steps.steps import predict  # pylint: disable=import-outside-toplevel

    version = train_version(penguins, store, run_prefix)
    point_production_at(penguins, version)
    table = pd.DataFrame(records(5))
    table["bill_length_mm"] = table["bill_length_mm"].astype(object)
    table.loc[1, "bill_length_mm"] = "oops"
    source = f"{run_prefix}/to_score.csv"
    store.write_bytes(source, table.to_csv(index=False).encode())
    result = predict.predict(penguins, store, f"{run_prefix}/predict", input_uri=source)
    logged = logged_rows(store, penguins)
    assert list(logged.columns) == prediction_log.SCHEMA.names
    assert set(logged["request_id"]) == {result["prediction_log"]["request_id"]}
    assert list(logged["source"].unique()) == ["batch"] and len(logged) == 5
    assert logged.loc[logged["row"] == 1, "prediction"].isna().all()
    assert "'oops'" in logged.loc[logged["row"] == 1, "no_prediction_reason"].iloc[0]
    assert logged.loc[logged["row"] != 1, "prediction"].notna().all()


def test_true_labels_sent_back_are_stored_beside_the_log_and_a_label_that_is_no_class_is_refused(
        penguins: Settings, store: Storage, service_env: dict[str, str], run_prefix: str,
        tmp_path: Path) -> None:
    version = train_version(penguins, store, run_prefix)
    point_production_at(penguins, version)
    request_id = f"labelled-{uuid.uuid4().hex[:8]}"
    with model_server(service_env, tmp_path) as server:
        server.wait_for_version(version)
        assert server.predict(records(3), headers={"X-Request-Id": request_id}).status == 200
        # make feedback: a CSV of request_id, label and row, as a person writes one.
        labels = tmp_path / "labels.csv"
        labels.write_text(f"request_id,label,row\n{request_id},Adelie,0\n{request_id},Gentoo,2\n")
        sent = subprocess.run([sys.executable, "infra/scripts/feedback.py", str(labels)],
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                              check=False, env={**os.environ, "SERVE_API_KEY": KEY,
                                                "SERVE_PORT": server.url.rsplit(":", 1)[1],
                                                "ENV_FILE": str(tmp_path / "no.env")})
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith(f"stored 2 label(s) of {penguins.model_name} predictions: s3://"
                                      f"{penguins.s3_prediction_log_bucket}/feedback/model="), sent.stdout
        wrong = server.call("POST", "/feedback", json.dumps([{"request_id": request_id, "label": "Dodo"}]
                                                            ).encode())
        assert wrong.status == 422 and "('Dodo') is not one of the model's classes" in wrong.detail
        no_id = server.call("POST", "/feedback", json.dumps([{"label": "Adelie"}]).encode())
        assert no_id.status == 422 and "label 0 needs request_id" in no_id.detail
        assert server.call("POST", "/feedback", json.dumps([{"request_id": request_id, "label": "Adelie"}]
                                                           ).encode(), key="").status == 401
    stored = logged_rows(store, penguins, kind=feedback.FEEDBACK_PREFIX)
    assert sorted(zip(stored["request_id"], stored["row"], stored["label"])) == [
        (request_id, 0, '"Adelie"'), (request_id, 2, '"Gentoo"')]
    # The labels join the log's rows as the monitor joins them: by request and row, the label as JSON.
    joined = logged_rows(store, penguins).merge(stored, on=["request_id", "row"])
    assert len(joined) == 2 and set(joined["source_x"]) == {"server"}
    assert joined["prediction"].str.startswith('"').all()
