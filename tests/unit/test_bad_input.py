"""Bad input fails with one clear line naming the cause, an exit code that says whether a
retry can help, and nothing lost.

The steps are run through their command lines, as Airflow runs them: bad data,
settings or keys exit EXIT_PERMANENT (no retry fixes them); a service that is
down or busy exits EXIT_RETRYABLE.
"""

from __future__ import annotations

import uuid

import mlflow
import pytest

from pipeline_steps.steps import prepare
from pipeline_steps.steps import register
from pipeline_steps.steps import train
from pipeline_steps.data import versions
from pipeline_steps.cli import EXIT_PERMANENT, EXIT_RETRYABLE
from pipeline_steps.data.tables import md5_hex
from pipeline_steps.data.builtin import builtin_csv
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage
from tests.services import free_port
from tests.unit.http_stub import Answer, http_stub

GOOD_CSV = b"a,b,target\n1,2,0\n2,3,1\n3,4,0\n4,5,1\n5,6,0\n6,7,1\n7,8,0\n8,9,1\n9,9,0\n1,5,1\n"


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single error line the CLI printed, and proof nothing else claimed success."""
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return errors[0]


def run_prepare(store: Storage, prefix: str, payload: bytes, name: str = "input.csv") -> int:
    source = f"{prefix}/input/{name}"
    store.write_bytes(source, payload)
    return prepare.main(["--input", source, "--output", f"{prefix}/prepare"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"a,b,label\n1,2,0\n2,3,1\n", "target column 'target' not found in"),
        (b"", "is empty"),
        (b"a;b;target\n1;2;0\n2;3;1\n", "looks ';'-delimited but CSV_DELIMITER is ','"),
        (b"a,b,target\n1,2,0.5\n2,3,1\n", "holds fractional values"),
        (b"a,b,target\n1,2,yes\n2,3,yes\n", "has a single class ('yes'); need at least two"),
        (b"a,b,target\n1,2,yes\n2,3,no\n3,4,no\n", "has a class with a single row"),
        (b"a,day,target\n" + b"".join(b"%d,2024-01-0%d,%d\n" % (i, i, i % 2) for i in range(1, 10))
         + b"9,2024-02-30,1\n", "but 1 value(s) are not: '2024-02-30'"),
        (b"a,b,target\n" + b"".join(b"%d,%d,%d\n" % (i, i * 7, i % 2) for i in range(30)) + b"1,oops,0\n",
         "column 'b' in s3://"),
        (b"a,b,target\n" + b"".join(b"1,id%d,%d\n" % (i, i % 2) for i in range(20)),
         "no usable feature column besides 'target': a is constant (1 in every row); b is a "
         "different text in every row, like a row id"),
        (b"a,b,target\n", "has no data rows"),
    ],
    ids=["missing-target", "empty-file", "wrong-delimiter", "fractional-label", "one-class",
         "single-row-class", "unparseable-date", "text-in-a-number-column", "nothing-usable",
         "header-only"],
)
def test_prepare_rejects_bad_data_with_a_message_naming_the_cause(
    store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str], payload: bytes, message: str
) -> None:
    assert run_prepare(store, run_prefix, payload) == EXIT_PERMANENT
    line = error_line(capsys)
    assert line.startswith("error: prepare: ")
    assert message in line
    assert not store.exists(f"{run_prefix}/prepare/result.json")
    assert not store.exists(f"{run_prefix}/prepare/train.parquet")


def test_text_labels_without_a_positive_class_are_named_when_the_gate_is_f1(
    store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = b"".join(b"%d,%d,%s\n" % (i, i % 3, b"yes" if i % 2 else b"no") for i in range(20))
    assert run_prepare(store, run_prefix, b"a,b,target\n" + rows) == EXIT_PERMANENT
    assert error_line(capsys).endswith(
        "target column 'target' has the text labels 'no' and 'yes': set POSITIVE_CLASS to the one "
        "f1 is measured on (or QUALITY_METRIC=f1_macro)")


def test_a_failed_prepare_leaves_the_earlier_output_as_it_was(
    store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_prepare(store, run_prefix, GOOD_CSV) == 0
    capsys.readouterr()
    before = {f: store.read_bytes(f"{run_prefix}/prepare/{f}") for f in ("result.json", "train.parquet")}

    assert run_prepare(store, run_prefix, b"a;b;target\n1;2;0\n") == EXIT_PERMANENT
    error_line(capsys)
    assert {f: store.read_bytes(f"{run_prefix}/prepare/{f}") for f in before} == before


def test_an_unpublished_data_version_is_named_and_not_retried(
    store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str]  # pylint: disable=unused-argument
) -> None:
    missing = "0" * 32
    assert prepare.main(["--data-version", missing, "--output", f"{run_prefix}/prepare"]) == EXIT_PERMANENT
    assert f"data version {missing} is not on the DVC remote s3://dvc-data/dvcstore" in error_line(capsys)


def test_a_corrupt_data_version_is_not_retried(
    settings: Settings, store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    version = md5_hex(GOOD_CSV + b"# the bytes that were pushed\n")
    store.write_bytes(versions.dvc_object_uri(settings, version), GOOD_CSV)  # not those bytes

    assert prepare.main(["--data-version", version, "--output", f"{run_prefix}/prepare"]) == EXIT_PERMANENT
    assert error_line(capsys) == (
        f"error: prepare: data version {version} on the remote is corrupt (md5 mismatch)"
    )
    assert not store.exists(f"{run_prefix}/prepare/result.json")


def test_an_unreachable_s3_is_named_and_retried(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # pylint: disable=unused-argument
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    code = prepare.main(["--input", "s3://dvc-data/x.csv", "--output", "s3://pipeline-runs/x"])
    assert code == EXIT_RETRYABLE
    assert error_line(capsys) == f"error: prepare: S3 unreachable at {endpoint}"


def test_a_busy_s3_is_retried(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # pylint: disable=unused-argument
) -> None:
    slow_down = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    with http_stub(lambda _: Answer(503, slow_down, "application/xml")) as s3:
        monkeypatch.setenv("S3_ENDPOINT_URL", s3.url)
        code = prepare.main(["--input", "s3://dvc-data/x.csv", "--output", "s3://pipeline-runs/x"])
    assert code == EXIT_RETRYABLE
    line = error_line(capsys)
    assert line.startswith(f"error: prepare: S3 at {s3.url} could not serve s3://dvc-data/x.csv for now")
    assert "SlowDown" in line


def test_wrong_s3_keys_are_named_and_not_retried(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # pylint: disable=unused-argument
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code = prepare.main(["--input", "s3://dvc-data/x.csv", "--output", "s3://pipeline-runs/x"])
    assert code == EXIT_PERMANENT
    assert "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in error_line(capsys)


def train_against_mlflow_at(uri: str, store: Storage, prefix: str, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> int:
    """Prepare with the real services, then train against ``uri``."""
    assert run_prepare(store, prefix, GOOD_CSV) == 0
    capsys.readouterr()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return train.main(["--prepared", f"{prefix}/prepare", "--output", f"{prefix}/train"])


def test_an_unreachable_mlflow_is_named_retried_and_train_writes_nothing(
    store: Storage, run_prefix: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    assert train_against_mlflow_at(uri, store, run_prefix, monkeypatch, capsys) == EXIT_RETRYABLE
    assert error_line(capsys).startswith(f"error: train: MLflow unreachable at {uri}")
    assert not store.exists(f"{run_prefix}/train/model.pkl")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (503, b"upstream unavailable", EXIT_RETRYABLE),
        (403, b"Invalid Host header - possible DNS rebinding attack detected", EXIT_PERMANENT),
    ],
    ids=["server-error-is-retried", "refusal-is-not-retried"],
)
def test_an_mlflow_answering_an_error_is_named_and_train_writes_nothing(
    store: Storage, run_prefix: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], status: int, body: bytes, expected: int,
) -> None:
    with http_stub(lambda _: Answer(status, body, "text/plain")) as mlflow_stub:
        code = train_against_mlflow_at(mlflow_stub.url, store, run_prefix, monkeypatch, capsys)
    assert code == expected
    assert error_line(capsys) == (
        f"error: train: MLflow at {mlflow_stub.url} answered GET /api/2.0/mlflow/experiments/search "
        f"with HTTP {status} ({body.decode()})"
    )
    assert not store.exists(f"{run_prefix}/train/model.pkl")


def test_register_without_an_evaluation_registers_nothing(
    settings: Settings, store: Storage, run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"{run_prefix}/input/data.csv"
    store.write_bytes(source, builtin_csv("iris"))
    prepared = prepare.prepare(settings, store, f"{run_prefix}/prepare", input_uri=source)
    trained = train.train(settings, store, prepared["prepared_uri"], f"{run_prefix}/train")
    # A forged evaluate record, passed by the gate, pointing at the trained but never evaluated run.
    store.write_result(f"{run_prefix}/evaluate", {
        "run_id": trained["run_id"], "metric": "f1", "value": 1.0,
        "gate": {"decision": "passed", "passed": True, "reason": "forged"},
    })
    capsys.readouterr()

    assert register.main(["--evaluated", f"{run_prefix}/evaluate"]) == EXIT_PERMANENT
    assert f"run {trained['run_id']} has no accuracy, balanced_accuracy, precision" in error_line(capsys)
    assert register.main(["--evaluated", f"{run_prefix}/nowhere"]) == EXIT_PERMANENT
    assert f"did the step that writes {run_prefix}/nowhere finish?" in error_line(capsys)
    assert not mlflow.MlflowClient(settings.mlflow_tracking_uri).search_registered_models(
        filter_string=f"name = '{settings.model_name}'"
    )


def test_a_malformed_setting_fails_at_start_naming_it(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,  # pylint: disable=unused-argument
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEED", "forty-two")
    output = f"s3://pipeline-runs/runs/{uuid.uuid4().hex}"
    assert prepare.main(["--input", "s3://dvc-data/x.csv", "--output", output]) == EXIT_PERMANENT
    assert error_line(capsys) == "error: prepare: SEED must be an integer, got 'forty-two'"
