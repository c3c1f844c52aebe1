"""The stack and the DAG, for real: `make up` from nothing, DAG runs through Airflow's REST API.

The tests run in file order on one stack: the first scheduled run trains and
its model is approved for Production through the REST API, a forced run is
compared with the Staging model on the same rows, registers and is approved, a
run above any model's reach stops and notifies, a run with nothing new is
skipped at once, publishing a file starts a run by itself whose model is
rejected (Production unchanged), `make rollback` serves the version before, S3
going away mid-run is survived by a retry, a task marked failed notifies and
leaves no container, a corrupt data version fails at once, and a restart keeps
every run, model and dataset.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipeline_steps.settings import SECRETS
from tests.stack.conftest import REPO, STACK_ENV, Stack, compose, stack_command

DAG_ID = "ml_training_pipeline"
METRICS_REPORT = REPO / "bench" / "results" / "e2e-metrics.json"
POINTER_KEY = "published/breast_cancer.json"


def mlflow_client(stack: Stack) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def trigger(stack: Stack, conf: dict) -> str:
    client = stack.airflow()
    client.wait_for_dag()
    assert client.pending_approvals() == [], "an earlier test left a promotion waiting for an answer"
    client.wait_until_idle()  # e.g. the scheduled run the daily schedule starts with the stack
    run_id = client.trigger(conf)
    stack.runs.append(run_id)
    return run_id


def follow(stack: Stack, run_id: str) -> tuple[str, dict]:
    client = stack.airflow()
    started = time.monotonic()
    state = client.follow(run_id, timeout=1200)
    print(f"phase dag run {run_id}: {time.monotonic() - started:.0f}s, {state}: {client.outcome(run_id)}")
    return state, client.task_states(run_id)


def run_dag(stack: Stack, conf: dict) -> tuple[str, dict]:
    return follow(stack, trigger(stack, conf))


def answer(stack: Stack, run_id: str, option: str) -> tuple[str, dict]:
    """Answer the run's promotion request through the REST API, as a person in the UI does."""
    client = stack.airflow()
    assert client.task_states(run_id)["approve_promotion"] == "awaiting_input"
    response = client.answer_approval(run_id, option)
    assert response["chosen_options"] == [option]
    wait_for_state(stack, run_id, "approve_promotion", {"success", "failed"})
    return follow(stack, run_id)


def scored_by(stack: Stack, run_id: str) -> dict:
    """The record a batch_scoring run wrote next to its predictions."""
    key = f"predictions/{run_id.replace(':', '-').replace('+', '-')}/predictions.json"
    return json.loads(stack.s3().get_object(Bucket="pipeline-runs", Key=key)["Body"].read())


def production(stack: Stack):
    return mlflow_client(stack).get_model_version_by_alias("ct-xgboost", "production")


def wait_for_state(stack: Stack, run_id: str, task_id: str, states: set[str], timeout: float = 300) -> str:
    client, deadline = stack.airflow(), time.monotonic() + timeout
    while (state := client.task_states(run_id).get(task_id)) not in states:
        assert time.monotonic() < deadline, f"{task_id} still {state} after {timeout:.0f}s"
        time.sleep(0.3)
    return state


def published_pointer(stack: Stack) -> dict:
    return json.loads(stack.s3().get_object(Bucket="dvc-data", Key=POINTER_KEY)["Body"].read())


def data_object_key(md5: str) -> str:
    return f"dvcstore/files/md5/{md5[:2]}/{md5[2:]}"


def staging(stack: Stack):
    return mlflow_client(stack).get_model_version_by_alias("ct-xgboost", "staging")


def versions_in_stage(stack: Stack, stage: str) -> list[str]:
    versions = mlflow_client(stack).search_model_versions("name = 'ct-xgboost'")
    return sorted(v.version for v in versions if v.current_stage == stage)


def step_containers(**labels: str) -> list[str]:
    filters = [arg for key, value in labels.items() for arg in ("--filter", f"label={key}={value}")]
    listing = ["docker", "ps", "-a", "-q", "--filter", "label=ct.step", *filters]
    return subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()


def asset_events(stack: Stack) -> int:
    client = stack.airflow()
    uri = urllib.parse.quote("s3://dvc-data/" + POINTER_KEY, safe="")
    asset = client.call("GET", f"/assets?uri_pattern={uri}")["assets"][0]
    return client.call("GET", f"/assets/events?asset_id={asset['id']}")["total_entries"]


def test_make_up_prints_where_everything_is(stack: Stack) -> None:
    assert f"Airflow UI   {stack.airflow_url}" in stack.up_output
    assert f"MLflow UI    {stack.mlflow_url}" in stack.up_output
    assert f"Model server {stack.serve_url}/docs" in stack.up_output
    assert "AIRFLOW_ADMIN_PASSWORD in .env" in stack.up_output
    assert "MLFLOW_ADMIN_PASSWORD in .env" in stack.up_output
    assert (REPO / ".env.e2e").stat().st_mode & 0o777 == 0o600


def test_every_service_reports_healthy(stack: Stack) -> None:
    health = get_json(f"{stack.airflow_url}/api/v2/monitor/health")
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    with urllib.request.urlopen(f"{stack.mlflow_url}/health", timeout=60) as response:
        assert response.status == 200
    assert stack.s3().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert stack.model_server().call("GET", "/health/live").body == {"status": "alive"}


def test_airflow_needs_a_login_and_then_shows_the_dag(stack: Stack) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.airflow_url}/api/v2/dags", timeout=60)  # pylint: disable=consider-using-with
    assert refused.value.code in (401, 403)
    dag = stack.airflow().wait_for_dag()
    assert dag["dag_id"] == DAG_ID
    assert dag["is_paused"] is False


def mlflow_status(url: str, login: tuple[str, str] | None = None) -> tuple[int, str]:
    """HTTP status of a GET, and the login scheme the server asks for when it refuses."""
    request = urllib.request.Request(url)
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, ""
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("WWW-Authenticate", "")


def test_mlflow_asks_for_a_login_and_answers_with_it_by_service_name_and_from_the_host(stack: Stack) -> None:
    api = f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert mlflow_status(api) == (401, 'Basic realm="mlflow"')
    assert mlflow_status(api, ("admin", "not-the-password"))[0] == 401
    assert mlflow_status(api, ("admin", stack.env["MLFLOW_ADMIN_PASSWORD"])) == (200, "")
    # A browser is asked for a login (basic auth) before the UI shows anything.
    assert mlflow_status(f"{stack.mlflow_url}/")[1].startswith("Basic")
    assert mlflow_client(stack).search_experiments() is not None  # MLFLOW_TRACKING_USERNAME/PASSWORD
    # The login is a secret file; the shim that starts Airflow makes it environment (as for tasks).
    probe = compose("exec", "-T", "airflow-scheduler", "/bin/sh", "/ct/with-secrets", "python3", "-c",
                    "import base64, os, urllib.request as u; e = os.environ; t = base64.b64encode(("
                    "e['MLFLOW_TRACKING_USERNAME'] + ':' + e['MLFLOW_TRACKING_PASSWORD']).encode())"
                    ".decode(); "
                    "print(u.urlopen(u.Request('http://mlflow:5000/api/2.0/mlflow/experiments/search"
                    "?max_results=1', headers={'Authorization': 'Basic ' + t})).status)")
    assert probe.stdout.strip().endswith("200")


def test_the_buckets_exist_and_the_first_dataset_is_published(stack: Stack) -> None:
    buckets = {b["Name"] for b in stack.s3().list_buckets()["Buckets"]}
    assert {"dvc-data", "mlflow-artifacts", "pipeline-runs"} <= buckets
    md5 = published_pointer(stack)["md5"]
    head = stack.s3().head_object(Bucket="dvc-data", Key=data_object_key(md5))
    assert head["ContentLength"] > 100_000


def table_to_score(stack: Stack, folder: Path, rows: int = 50) -> Path:
    """The published training table without its labels: what a user brings to be scored."""
    current = stack.s3().get_object(Bucket="dvc-data", Key=data_object_key(published_pointer(stack)["md5"]))
    lines = current["Body"].read().decode().splitlines()[: rows + 1]
    target = lines[0].split(",").index("target")
    path = folder / "to_score.csv"
    path.write_text("\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != target)
                              for line in lines) + "\n", encoding="utf-8")
    return path


def answered_by_the_model_server(stack: Stack, version: str) -> None:
    """The model server answers with ``version`` within 10 s of its alias move, and no restart."""
    server = stack.model_server()
    assert server.wait_for_version(version, timeout=10) < 10
    table = pd.read_csv(table_to_score(stack, Path(tempfile.mkdtemp()), rows=2))
    reply = server.predict(json.loads(table.to_json(orient="records")))
    assert reply.status == 200 and reply.body["model_version"] == version, reply


def make_score(stack: Stack, file: Path) -> tuple[str, str]:
    """`make score FILE=...` as a user runs it: its batch_scoring run id and its last line."""
    done = stack_command("make", "score", f"FILE={file}")
    lines = done.stdout.strip().splitlines()
    run_id = next(line for line in lines if line.startswith("following batch_scoring run ")).split()[3]
    stack.runs.append(run_id)
    return run_id, lines[-1]


def s3_as(stack: Stack, identity: str):
    """boto3 S3 client with one of the stack's scoped identities (PIPELINE, PUBLISHER, MLFLOW)."""
    import boto3  # pylint: disable=import-outside-toplevel

    return boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1",
                        aws_access_key_id=stack.env[f"S3_{identity}_ACCESS_KEY"],
                        aws_secret_access_key=stack.env[f"S3_{identity}_SECRET_KEY"])


def refused(call) -> str:
    from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel

    with pytest.raises(ClientError) as denied:
        call()
    return denied.value.response["Error"]["Code"]


def test_each_s3_identity_reaches_only_what_it_needs(stack: Stack) -> None:
    pipeline, publisher, mlflow_s3, server = (s3_as(stack, name)
                                              for name in ("PIPELINE", "PUBLISHER", "MLFLOW", "SERVER"))
    # The steps read the data and write runs, but cannot write the DVC remote.
    assert pipeline.get_object(Bucket="dvc-data", Key=POINTER_KEY)["Body"].read()
    assert refused(lambda: pipeline.put_object(Bucket="dvc-data", Key="x.txt", Body=b"x")) == "AccessDenied"
    pipeline.put_object(Bucket="pipeline-runs", Key="identity-check.txt", Body=b"x")
    stack.s3().delete_object(Bucket="pipeline-runs", Key="identity-check.txt")
    assert refused(lambda: pipeline.list_objects_v2(Bucket="mlflow-artifacts")) == "AccessDenied"
    # The publisher writes the data only (and reads a monitor run's rows); MLflow reaches its artifacts only.
    assert refused(lambda: publisher.put_object(Bucket="pipeline-runs", Key="x", Body=b"x")) == "AccessDenied"
    assert refused(lambda: mlflow_s3.list_objects_v2(Bucket="dvc-data")) == "AccessDenied"
    assert mlflow_s3.list_objects_v2(Bucket="mlflow-artifacts")["ResponseMetadata"]["HTTPStatusCode"] == 200
    # The model server appends to the prediction log, and reaches nothing else.
    server.put_object(Bucket="prediction-log", Key="identity-check.txt", Body=b"x")
    stack.s3().delete_object(Bucket="prediction-log", Key="identity-check.txt")
    assert refused(lambda: server.put_object(Bucket="dvc-data", Key="x.txt", Body=b"x")) == "AccessDenied"
    assert refused(lambda: server.put_object(Bucket="pipeline-runs", Key="x", Body=b"x")) == "AccessDenied"
    assert refused(lambda: server.get_object(Bucket="dvc-data", Key=POINTER_KEY)) == "AccessDenied"
    assert refused(lambda: server.list_objects_v2(Bucket="mlflow-artifacts")) == "AccessDenied"


def test_a_step_with_a_wrong_s3_key_fails_at_once_in_one_line(
    stack: Stack,  # pylint: disable=unused-argument
) -> None:
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", f"{STACK_ENV['COMPOSE_PROJECT_NAME']}_mlops",
         "-e", "S3_ENDPOINT_URL=http://s3:9000", "-e", "AWS_ACCESS_KEY_ID=ct-not-a-key",
         "-e", "AWS_SECRET_ACCESS_KEY=not-the-secret", "-e", "MLFLOW_TRACKING_URI=http://mlflow:5000",
         "ct-check-data:latest"], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 3, done.stderr  # no retry brings the right key
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: check_data: S3 at http://s3:9000 refused access to s3://dvc-data/{POINTER_KEY} "
        "(InvalidAccessKeyId): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), done.stderr


def test_scoring_before_any_model_is_approved_ends_in_one_line(stack: Stack, tmp_path: Path) -> None:
    _, last = make_score(stack, table_to_score(stack, tmp_path))
    assert last == ("batch_scoring: skipped: no Production model of ct-xgboost yet: approve a "
                    "registered version first (make approve, or Required actions in the Airflow UI)")


def test_the_first_scheduled_run_of_a_fresh_stack_succeeds_or_skips_never_fails(stack: Stack) -> None:
    client, deadline = stack.airflow(), time.monotonic() + 300
    client.wait_for_dag()
    while not (scheduled := client.runs(run_type="scheduled")):
        assert time.monotonic() < deadline, "the daily schedule started no run with the stack"
        time.sleep(2)
    run_id = scheduled[0]["dag_run_id"]
    stack.runs.append(run_id)
    state, tasks = follow(stack, run_id)
    assert client.failed_tries(run_id) == []
    assert tasks["check_data"] in ("success", "skipped")
    if state == "awaiting_input":  # it registered the stack's first model: a person approves it
        assert tasks["register"] == "success"
        assert "waiting for approval" in client.outcome(run_id)
        state, tasks = answer(stack, run_id, "Approve")
        assert tasks["promote"] == "success", tasks
        assert production(stack).version == staging(stack).version
    assert state == "success", tasks


def test_a_triggered_run_faces_the_staging_model_on_the_same_rows_registers_and_is_approved(
    stack: Stack,
) -> None:
    if not versions_in_stage(stack, "Production"):  # the first scheduled run skipped: make one
        assert run_dag(stack, {"force": True, "auto_approve": True})[0] == "success"
    champion, serving = staging(stack), production(stack)
    # force: the first scheduled run has trained on this data version already.
    run_id = trigger(stack, {"force": True})
    state, tasks = follow(stack, run_id)
    assert state == "awaiting_input", tasks
    assert tasks["register"] == "success"
    assert tasks["stop_pipeline"] == "skipped"
    assert (tasks["tune"], tasks["train"]) == ("skipped", "success")  # tune is off by default

    version = staging(stack)
    client = mlflow_client(stack)
    run = client.get_run(version.run_id)
    # The Staging model was scored on this run's own test rows, and both numbers are in the run.
    evaluated = stack.airflow().xcom(run_id, "evaluate")
    assert evaluated["champion"]["version"] == champion.version and evaluated["champion"]["scored"]
    for name in ("f1", "accuracy", "roc_auc"):
        assert run.data.metrics[f"challenger.{name}"] == run.data.metrics[name]
        assert run.data.metrics[f"champion.{name}"] == evaluated["champion"]["metrics"][name]
    assert run.data.tags["gate.decision"] == "passed"
    same_data = "data drift not measured: the Staging model was trained on this same data version"
    assert evaluated["drift_line"] == same_data == run.data.tags["drift.summary"]
    assert run.data.tags["gate.reason"].endswith(f"; {same_data}")
    assert f"the Staging model (version {champion.version}: " in run.data.tags["gate.reason"]
    assert "on the same test split" in run.data.tags["gate.reason"]
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"model.pkl", "metrics.json", "confusion_matrix.png", "champion_vs_challenger.png"} <= artifacts
    with tempfile.TemporaryDirectory() as tmp:
        metrics_file = Path(client.download_artifacts(version.run_id, "metrics.json", tmp))
        logged = {k: v for k, v in run.data.metrics.items() if "." not in k}
        assert json.loads(metrics_file.read_text(encoding="utf-8")) == logged

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    assert version.tags["git_commit"] == commit
    assert version.tags["data_version"] == published_pointer(stack)["md5"]
    assert version.tags["seed"] == "42"
    for step in ("prepare", "train", "evaluate", "register"):
        assert f"ct-{step}:" in version.tags[f"image.{step}"]
        assert "@sha256:" in version.tags[f"image.{step}"]
    # Until a person answers, Production is what it was.
    assert production(stack).version == serving.version

    state, tasks = answer(stack, run_id, "Approve")
    assert state == "success", tasks
    assert tasks["promote"] == "success" and tasks["keep_production"] == "skipped"
    promoted = production(stack)
    assert promoted.version == version.version
    assert promoted.tags["production.approved_by"] == "admin"
    assert "@sha256:" in promoted.tags["image.promote"]
    assert versions_in_stage(stack, "Production") == [version.version]
    assert stack.airflow().outcome(run_id).endswith(
        f"production now serves ct-xgboost version {version.version} "
        f"(was version {serving.version}; approved by admin)")
    answered_by_the_model_server(stack, version.version)
    # For CI's job summary: what this change did to the model.
    METRICS_REPORT.parent.mkdir(parents=True, exist_ok=True)
    METRICS_REPORT.write_text(json.dumps({
        "model": "ct-xgboost", "version": version.version, "metrics": logged,
        "data_version": version.tags["data_version"],
    }, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_make_reproduce_re_runs_a_registered_version_in_its_images_and_locally_with_identical_metrics(
    stack: Stack,
) -> None:
    version = staging(stack)
    count = len(mlflow_client(stack).search_model_versions("name = 'ct-xgboost'"))
    recorded = mlflow_client(stack).get_run(version.run_id).data.metrics

    for where, extra in (("in its image ct-{step}:", ()), ("locally: as asked", ("LOCAL=yes",))):
        done = stack_command("make", "reproduce", f"VERSION={version.version}", *extra)
        lines = done.stdout.strip().splitlines()
        assert lines[-1].startswith(
            f"reproduced: ct-xgboost version {version.version}, every metric identical"), done.stdout
        for step in ("prepare", "train", "evaluate"):
            assert f"  {step:<9} ran {where.format(step=step)}" in done.stdout, done.stdout
        f1_line = next(line.split() for line in lines if line.split()[:1] == ["f1"])
        assert f1_line == ["f1", str(recorded["f1"]), str(recorded["f1"]), "same"]

    # Nothing registered, nothing moved.
    assert len(mlflow_client(stack).search_model_versions("name = 'ct-xgboost'")) == count
    assert staging(stack).version == version.version


def test_publishing_a_table_to_score_scores_it_with_the_approved_model(stack: Stack, tmp_path: Path) -> None:
    serving = production(stack)
    scored_run, last = make_score(stack, table_to_score(stack, tmp_path))
    record = scored_by(stack, scored_run)
    assert record["model_version"] == serving.version and record["rows"] == 50
    assert last == (f"batch_scoring: scored 50 rows of {record['input']} with ct-xgboost version "
                    f"{serving.version}: {record['predictions_uri']}")
    assert record["input"].startswith("breast_cancer_to_score version ")
    assert "ct-predict:" in record["image"] and "@sha256:" in record["image"]
    predictions = pd.read_parquet(io.BytesIO(stack.s3().get_object(
        Bucket="pipeline-runs", Key=record["predictions_uri"].split("/", 3)[3])["Body"].read()))
    assert len(predictions) == 50
    assert set(predictions["prediction"]) <= {0, 1}
    assert {"probability.0", "probability.1"} <= set(predictions.columns)


def test_a_tuned_run_that_cannot_beat_the_threshold_registers_nothing_and_says_why(stack: Stack) -> None:
    before = staging(stack)
    client = mlflow_client(stack)
    count = len(client.search_model_versions("name = 'ct-xgboost'"))
    run_id = trigger(stack, {"threshold": 0.999, "force": True, "tune": True})
    state, tasks = follow(stack, run_id)
    assert state == "success", tasks
    assert tasks["stop_pipeline"] == "success"
    assert tasks["register"] == "skipped"
    after = staging(stack)
    assert (after.version, after.run_id) == (before.version, before.run_id)
    assert len(client.search_model_versions("name = 'ct-xgboost'")) == count

    # The tune Param ran the Optuna study (params.yaml's trials), each trial a nested run,
    # and train fitted with its best parameters.
    tuned = stack.airflow().xcom(run_id, "tune")
    assert tasks["tune"] == "success" and tuned["trials"] >= 1
    study = client.get_run(tuned["run_id"])
    trials = client.search_runs([study.info.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{tuned['run_id']}'")
    assert len(trials) == tuned["trials"]
    trained = client.get_run(stack.airflow().xcom(run_id, "train")["run_id"])
    assert trained.data.tags["tune.run_id"] == tuned["run_id"]
    assert trained.data.params["xgb.max_depth"] == str(tuned["best_params"]["max_depth"])

    message = stack.notifications.wait_for(run_id=run_id, task_id="stop_pipeline")
    assert message["outcome"] == "stopped"
    assert message["reason"].endswith("does not beat the threshold 0.9990; data drift not measured: "
                                      "the Staging model was trained on this same data version")
    assert message["dag_id"] == DAG_ID
    assert message["url"].startswith(f"{stack.airflow_url}/dags/{DAG_ID}/runs/")
    assert "stopped by the quality gate, nothing registered" in message["text"]


def test_a_run_without_new_data_is_skipped_at_once_after_one_check(stack: Stack) -> None:
    stack.airflow().wait_until_idle()
    since = int(time.time())
    started = time.monotonic()
    done = stack_command("make", "run")
    seconds = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    run_id = lines[0].split(" run ", 1)[1].split(" ", 1)[0]
    stack.runs.append(run_id)
    assert lines[-1].startswith(
        f"{DAG_ID}: skipped: no data version is newer than the Staging model's (latest "
    ), lines[-1]
    tasks = stack.airflow().task_states(run_id)
    assert set(tasks.values()) == {"skipped"}, tasks
    created = subprocess.run(
        ["docker", "events", "--since", str(since), "--until", str(int(time.time()) + 1),
         "--filter", "type=container", "--filter", "event=create",
         "--filter", "label=ct.step=check_data", "--filter", f"label=ct.dag_run={run_id}",
         "--format", "{{.ID}}"], capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    assert len(created) == 1, created
    print(f"measure: make run with no new data answered in {seconds:.1f}s (target in `make bench-runs`)")


def make_run_behind(stack: Stack, waiting: str) -> str:
    """`make run` while run `waiting` waits for a person: it queues a run and says so at once."""
    lines = stack_command("make", "run").stdout.strip().splitlines()
    queued = lines[0].split(" run ", 1)[1].split(" ", 1)[0]
    stack.runs.append(queued)
    assert lines[-1] == (
        f"{DAG_ID}: run {queued} is queued behind run {waiting}, which waits for an answer to its "
        "promotion request: make approve / make reject (or the Airflow UI), then make follow"), lines
    return queued


def compared_fairly_with_drift_measured(stack: Stack, run_id: str, model_run_id: str) -> None:
    """A new data version: check_drift compared it with the Staging model's, with Evidently; the
    Staging model had seen none of the test rows, and the gate's reason says so."""
    drift_line = stack.airflow().xcom(run_id, "evaluate")["drift_line"]
    assert drift_line.startswith("data drift since the Staging model's data: "), drift_line
    new_run = mlflow_client(stack).get_run(model_run_id)
    assert new_run.data.tags["drift.summary"] == drift_line
    assert new_run.data.tags["champion.seen_test_rows"] == "0"
    test_rows = new_run.data.tags["rows.test"]
    assert f"it was trained on none of these {test_rows} test rows" in new_run.data.tags["gate.reason"]
    assert 0.0 <= new_run.data.metrics["drift.share"] <= 1.0
    assert "drift_report.html" in {a.path for a in mlflow_client(stack).list_artifacts(model_run_id)}


def test_publishing_a_file_starts_a_run_by_itself_that_registers_it(stack: Stack, tmp_path: Path) -> None:
    client = stack.airflow()
    client.wait_until_idle()
    known = {run["dag_run_id"] for run in client.runs()}
    # A new version that shares every row with the Staging model's: the same rows in another
    # order. Each row keeps its side of the split, so the Staging model is scored on rows it
    # never learnt, and the new model (the same rows, the same split) is as good as it.
    table = stack.s3().get_object(Bucket="dvc-data", Key=data_object_key(published_pointer(stack)["md5"])
                                  )["Body"].read().decode().splitlines()
    new_file = tmp_path / "breast_cancer_v2.csv"
    new_file.write_text("\n".join([table[0], *reversed(table[1:])]) + "\n", encoding="utf-8")

    published_at = time.monotonic()
    done = stack_command("make", "publish", f"FILE={new_file}")
    md5 = published_pointer(stack)["md5"]
    assert done.stdout.strip().splitlines()[-1].startswith(
        f"published breast_cancer version {md5} (breast_cancer_v2.csv: 569 rows, every one kept); "
        "Airflow has the event"
    ), done.stdout
    deadline = time.monotonic() + 300
    while not (new := [r for r in client.runs() if r["dag_run_id"] not in known]):
        assert time.monotonic() < deadline, "publishing started no run"
        time.sleep(1)
    print(f"measure: a run started {time.monotonic() - published_at:.1f}s after make publish began")
    assert new[0]["run_type"] == "asset_triggered"
    run_id = new[0]["dag_run_id"]
    stack.runs.append(run_id)
    serving = production(stack)
    state, tasks = follow(stack, run_id)
    assert state == "awaiting_input", tasks
    assert tasks["register"] == "success", tasks
    version = staging(stack)
    assert version.tags["data_version"] == md5
    compared_fairly_with_drift_measured(stack, run_id, version.run_id)

    queued = make_run_behind(stack, run_id)

    # A person rejects it: it stays the Staging model, Production is unchanged and they hear of it.
    state, tasks = answer(stack, run_id, "Reject")
    assert state == "success", tasks
    assert tasks["keep_production"] == "success" and tasks["promote"] == "skipped"
    assert production(stack).version == serving.version
    assert staging(stack).version == version.version
    message = stack.notifications.wait_for(run_id=run_id, task_id="keep_production")
    assert message["outcome"] == "rejected"
    assert message["reason"] == (f"version {version.version} stays in Staging (Reject by admin): "
                                 f"Production is unchanged and serves version {serving.version}")
    # The queued run goes on once the answer is in: nothing is newer than the Staging model now.
    assert client.follow(queued, timeout=600) == "success"
    assert client.outcome(queued).startswith("skipped: no data version is newer than the Staging model's")


def test_make_rollback_serves_the_version_approved_before(stack: Stack) -> None:
    serving = production(stack)
    approved = [v for v in mlflow_client(stack).search_model_versions("name = 'ct-xgboost'")
                if "production.promoted_at" in v.tags and v.version != serving.version]
    before = max(approved, key=lambda v: v.tags["production.promoted_at"])
    done = stack_command("make", "rollback")
    run_id = done.stdout.strip().splitlines()[0].split(" run ", 1)[1].split(" ", 1)[0]
    stack.runs.append(run_id)
    assert done.stdout.strip().splitlines()[-1] == (
        f"rollback_production: production now serves ct-xgboost version {before.version} "
        f"(rolled back from version {serving.version})"), done.stdout
    assert production(stack).version == before.version
    assert versions_in_stage(stack, "Production") == [before.version]
    answered_by_the_model_server(stack, before.version)
    # Nothing approved before that one: a second rollback says so, and Production stays as it is.
    again = stack_command("make", "rollback")
    stack.runs.append(again.stdout.strip().splitlines()[0].split(" run ", 1)[1].split(" ", 1)[0])
    assert again.stdout.strip().splitlines()[-1] == (
        f"rollback_production: skipped: nothing to roll back to: ct-xgboost version {before.version} is the "
        "only approved version left, and Production stays as it is"), again.stdout
    assert production(stack).version == before.version

    # The next scoring run (here by hand, on any s3:// file) uses the version rolled back to.
    key = "inputs/to_score.csv"
    stack.s3().put_object(Bucket="pipeline-runs", Key=key,
                          Body=table_to_score(stack, Path(tempfile.mkdtemp()), rows=20).read_bytes())
    client = stack.airflow()
    scoring_run = client.trigger({"input": f"s3://pipeline-runs/{key}"}, "batch_scoring")
    stack.runs.append(scoring_run)
    assert client.follow(scoring_run, "batch_scoring", timeout=600) == "success"
    record = scored_by(stack, scoring_run)
    assert (record["model_version"], record["rows"]) == (before.version, 20)
    assert record["input"] == f"s3://pipeline-runs/{key}"


def test_a_file_that_fails_validation_is_not_published_and_starts_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    pointer, events = published_pointer(stack), asset_events(stack)
    bad = tmp_path / "no_target.csv"
    bad.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    done = stack_command("make", "publish", f"FILE={bad}", check=False)
    assert done.returncode != 0
    assert "error: publish_data: target column 'target' not found" in done.stderr, done.stderr
    assert done.stdout == "", done.stdout  # nothing but the error: no stray line before make's own
    assert published_pointer(stack) == pointer
    assert asset_events(stack) == events
    # A column of numbers with a word in it: refused naming the column, the count and the value.
    table = stack.s3().get_object(Bucket="dvc-data", Key=data_object_key(pointer["md5"]))["Body"].read()
    lines = table.decode().splitlines()
    typo = tmp_path / "typo.csv"
    typo.write_text("\n".join([lines[0], *("oops" + line[line.index(","):] for line in lines[1:4]),
                               *lines[4:]]) + "\n", encoding="utf-8")
    done = stack_command("make", "publish", f"FILE={typo}", check=False)
    assert done.returncode != 0 and done.stdout == "", done.stdout
    column = lines[0].split(",")[0]
    assert (f"error: publish_data: column '{column}' in typo.csv holds numbers, but 3 value(s) are not: "
            "'oops'") in done.stderr, done.stderr
    assert published_pointer(stack) == pointer and asset_events(stack) == events


def test_s3_gone_for_30_seconds_during_training_is_survived_by_a_retry(stack: Stack) -> None:
    run_id = trigger(stack, {"force": True, "auto_approve": True})
    wait_for_state(stack, run_id, "train", {"queued", "running"})
    compose("stop", "s3")
    time.sleep(30)
    compose("start", "s3")
    state, tasks = follow(stack, run_id)
    assert state == "success", tasks
    client = stack.airflow()
    failed = [(task, number) for task, number, _ in client.failed_tries(run_id)]
    assert failed, "no step met the outage: the test proved nothing"
    for task, number in failed:
        assert "S3 unreachable at http://s3:9000" in client.try_log(run_id, task, number)


def test_a_task_marked_failed_while_its_container_runs_fails_the_run_and_notifies(stack: Stack) -> None:
    # A million trees keep train's container busy far longer than the test needs.
    run_id = trigger(stack, {"force": True, "xgb_params": {"n_estimators": 1_000_000}})
    deadline = time.monotonic() + 300
    while not step_containers(**{"ct.step": "train", "ct.dag_run": run_id}):
        assert time.monotonic() < deadline, "train's container never started"
        time.sleep(0.3)
    time.sleep(2)
    stack.airflow().set_task_state(run_id, "train", "failed")
    state, tasks = follow(stack, run_id)
    assert state == "failed"
    assert tasks["train"] == "failed"
    assert tasks["evaluate"] == "upstream_failed"
    message = stack.notifications.wait_for(run_id=run_id, task_id="train")
    assert message["outcome"] == "failed"
    assert "stopped from outside" in message["reason"]
    assert f"/runs/{urllib.parse.quote(run_id, safe='')}/tasks/train" in message["url"]
    deadline = time.monotonic() + 30
    while step_containers(**{"ct.dag_run": run_id}):
        assert time.monotonic() < deadline, f"containers of {run_id} left: {step_containers()}"
        time.sleep(1)


def test_a_corrupt_data_version_fails_at_once_without_retries_and_notifies(stack: Stack) -> None:
    key = data_object_key(published_pointer(stack)["md5"])
    original = stack.s3().get_object(Bucket="dvc-data", Key=key)["Body"].read()
    stack.s3().put_object(Bucket="dvc-data", Key=key, Body=b"id,target\n1,0\n")
    try:
        stack.airflow().wait_until_idle()
        done = stack_command("make", "run", "CONF={\"force\": true}", check=False)
    finally:
        stack.s3().put_object(Bucket="dvc-data", Key=key, Body=original)
    lines = done.stdout.strip().splitlines()
    run_id = lines[0].split(" run ", 1)[1].split(" ", 1)[0]
    stack.runs.append(run_id)
    assert done.returncode != 0, done.stdout + done.stderr  # make run fails when the run fails
    # make run shows the failed try's log, then says in its last line where and why.
    assert "--- prepare try 1, last lines of its log ---" in done.stdout
    assert lines[-1].startswith(f"{DAG_ID}: failed at prepare, nothing registered: error: prepare: "
                                "data version "), lines[-1]
    assert lines[-1].endswith("corrupt (md5 mismatch) (exit code 3: no retry can fix this)")
    tasks = stack.airflow().task_states(run_id)
    assert stack.airflow().run(run_id)["state"] == "failed"
    assert tasks["prepare"] == "failed"
    assert [t["try_number"] for t in stack.airflow().tries(run_id, "prepare")] == [1]
    message = stack.notifications.wait_for(run_id=run_id, task_id="prepare")
    assert "corrupt (md5 mismatch)" in message["reason"]
    assert message["reason"].endswith("(exit code 3: no retry can fix this)")


def test_no_step_container_is_left_behind(stack: Stack) -> None:  # pylint: disable=unused-argument
    assert step_containers() == []


PROXY_PROBE = """
import io, json, os, socket, docker
client = docker.APIClient(base_url=os.environ["CT_DOCKER_URL"])
image = os.environ.get("CT_IMAGE_PREFIX", "ct-") + "check-data:" + os.environ["CT_IMAGE_TAG"]
def attempt(call):
    try:
        call()
        return "allowed"
    except docker.errors.APIError as exc:
        return f"{exc.status_code} {exc.explanation}"
print(json.dumps({
    "socket": os.path.exists("/var/run/docker.sock"),
    "url": os.environ["CT_DOCKER_URL"],
    "privileged": attempt(lambda: client.create_container(
        image, host_config=client.create_host_config(privileged=True))),
    "bind mount": attempt(lambda: client.create_container(
        image, host_config=client.create_host_config(binds=["/:/host"]))),
    "exec": attempt(lambda: client.exec_create(socket.gethostname(), ["id"])),
    "build": attempt(lambda: list(client.build(fileobj=io.BytesIO(b"FROM scratch\\n")))),
}))
"""


def test_airflow_reaches_docker_only_through_the_proxy_which_refuses_the_host(
    stack: Stack,  # pylint: disable=unused-argument
) -> None:
    """Every step above ran through the proxy; from the scheduler, the doors to the host are shut."""
    probe = compose("exec", "-T", "airflow-scheduler", "python", "-c", PROXY_PROBE)
    answers = json.loads(probe.stdout.strip().splitlines()[-1])
    assert answers.pop("socket") is False
    assert answers.pop("url") == "tcp://docker-proxy:2375"
    refused = "403 refused by the stack's Docker API proxy: "
    assert answers["privileged"] == refused + "create.HostConfig.Privileged must be empty", answers
    assert answers["bind mount"] == refused + "create.HostConfig.Binds must be empty", answers
    for call in ("exec", "build"):
        assert answers[call].startswith(refused) and f"/{call} is not among" in answers[call], answers
    # The pipeline's own containers were created through it (its access log), none refused.
    log = compose("logs", "--no-color", "docker-proxy").stdout
    created = [line for line in log.splitlines() if "POST /v1." in line and "/containers/create" in line]
    assert len(created) > 20 and all(" 201 " in line for line in created if " 403 " not in line)
    mounts = subprocess.run(
        ["docker", "inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}",
         compose("ps", "-q", "airflow-scheduler").stdout.strip()],
        capture_output=True, text=True, check=True).stdout
    assert "docker.sock" not in mounts


def test_a_restart_keeps_runs_models_and_data(stack: Stack) -> None:
    pointer, version = published_pointer(stack), staging(stack)
    stack_command("bash", "-c", "source infra/scripts/stack.sh && compose down --remove-orphans")
    stack_command("infra/scripts/up.sh")
    assert published_pointer(stack) == pointer
    assert staging(stack).version == version.version
    assert stack.airflow().wait_for_dag()["dag_id"] == DAG_ID


def test_no_image_carries_a_secret(stack: Stack) -> None:
    assert stack.env  # the stack is up: make up wrote the secret files
    secrets = secret_files()
    assert sorted(secrets) == sorted(secret.name for secret in SECRETS)
    listing = ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
               "--filter", "reference=ct-*:latest"]
    names = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
    assert len(names) >= 10, names
    for name in names:
        layers = subprocess.run(["docker", "history", "--no-trunc", name], capture_output=True,
                                text=True, check=True).stdout
        config = subprocess.run(["docker", "image", "inspect", name], capture_output=True,
                                text=True, check=True).stdout
        leaked = [key for key, value in secrets.items() if value in layers + config]
        assert leaked == [], f"{name} carries {leaked}"


def secret_files() -> dict[str, str]:
    """Every secret of the stack, by name: the files make up wrote from .env (one each)."""
    folder = Path(STACK_ENV["ENV_FILE"] + ".secrets")
    return {path.name: path.read_text() for path in sorted(folder.iterdir())}


def test_no_service_shows_a_secret_to_docker_inspect(stack: Stack) -> None:
    """Secrets reach the services as files under /run/secrets, never as configuration."""
    secrets = secret_files()
    assert len(secrets) == len(SECRETS) and all(len(value) >= 12 for value in secrets.values())
    assert secrets["MLFLOW_ADMIN_PASSWORD"] == stack.env["MLFLOW_ADMIN_PASSWORD"]
    project = STACK_ENV["COMPOSE_PROJECT_NAME"]
    listing = ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"]
    containers = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
    inspected = json.loads(subprocess.run(["docker", "inspect", *containers], capture_output=True,
                                          text=True, check=True).stdout)
    services = {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}
    assert {"postgres", "s3", "s3-init", "mlflow", "docker-proxy", "airflow-init", "airflow-apiserver",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "model-server-init",
            "model-server"} <= set(services)
    for service, container in services.items():
        shown = json.dumps(container)
        leaked = [name for name, value in secrets.items() if value in shown]
        assert leaked == [], f"docker inspect of {service} shows {leaked}"

    def mounted(service: str) -> dict[str, str]:
        """Each secret file the service mounts: its target name -> the secret (the source file)."""
        return {m["Destination"].removeprefix("/run/secrets/"): Path(m["Source"]).name
                for m in services[service]["Mounts"] if m["Destination"].startswith("/run/secrets/")}
    # Each service has only the secrets it needs, as files.
    assert mounted("docker-proxy") == {}
    assert mounted("mlflow") == {
        "MLFLOW_DB_PASSWORD": "MLFLOW_DB_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD": "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "MLFLOW_SECRET_KEY",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": "MLFLOW_WEBHOOK_KEY",
        "AWS_ACCESS_KEY_ID": "S3_MLFLOW_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY": "S3_MLFLOW_SECRET_KEY"}
    # The model server: its key, a read-only MLflow login, S3 keys for the prediction log only.
    assert mounted("model-server") == {
        "SERVE_API_KEY": "SERVE_API_KEY", "SERVE_WEBHOOK_SECRET": "SERVE_WEBHOOK_SECRET",
        "MLFLOW_TRACKING_PASSWORD": "MLFLOW_SERVER_PASSWORD",
        "AWS_ACCESS_KEY_ID": "S3_SERVER_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY": "S3_SERVER_SECRET_KEY"}
    scheduler = mounted("airflow-scheduler")
    assert scheduler["AWS_SECRET_ACCESS_KEY"] == "S3_PIPELINE_SECRET_KEY"
    # The publisher's keys too, for the one task that publishes (the monitor's): no other step gets them.
    assert scheduler["S3_PUBLISHER_SECRET_KEY"] == "S3_PUBLISHER_SECRET_KEY"
    assert scheduler["MLFLOW_TRACKING_PASSWORD"] == "MLFLOW_ADMIN_PASSWORD"
    # The people's and the publisher's Airflow passwords: only the API server checks them.
    assert set(mounted("airflow-apiserver").values()) == {
        "AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_PUBLISHER_PASSWORD"}
    for service in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-init"):
        assert not {"AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_PUBLISHER_PASSWORD"} & set(mounted(service).values())
    assert "S3_SECRET_KEY" not in {*scheduler.values(), *mounted("mlflow").values()}
    # `airflow` started by `docker compose exec` (no shim) still reaches its database.
    assert DAG_ID in compose("exec", "-T", "airflow-scheduler", "airflow", "dags", "list").stdout
