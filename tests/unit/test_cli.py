"""Each step is a module with a CLI whose only stdout is the JSON result, and whose exit code
says whether running it again can help (the contract in pipeline_steps/cli.py's docstring)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_steps import cli, errors, pipeline
from pipeline_steps.steps import prepare
from pipeline_steps.settings import Settings

# Every step but check_drift, whose Evidently only its image carries (tests/images runs its --help).
STEPS = [step.name for step in pipeline.STEPS if step.lock != "drift"]


def run_module(step: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline_steps", step, *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300,
    )


@pytest.mark.parametrize("step", STEPS)
def test_help_works_without_any_setting(step: str, tmp_path: Path) -> None:
    done = run_module(step, "--help", cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == cli.EXIT_OK, done.stderr
    assert f"python -m pipeline_steps {step}" in done.stdout


def test_the_steps_are_named_and_an_unknown_one_is_refused_in_one_line(tmp_path: Path) -> None:
    listed = run_module("--help", cwd=tmp_path)
    assert listed.returncode == cli.EXIT_OK
    assert all(f"  {step.name} " in listed.stdout for step in pipeline.STEPS)
    unknown = run_module("fit", cwd=tmp_path)
    assert unknown.returncode == cli.EXIT_PERMANENT
    assert unknown.stderr.strip() == f"error: no step 'fit'; the steps are: {', '.join(pipeline.BY_NAME)}"


def test_a_step_prints_one_json_line_and_logs_to_stderr(tmp_path: Path) -> None:
    rows = [f"{i},{i % 3},{i % 2}" for i in range(20)]
    (tmp_path / "small.csv").write_text("\n".join(["a,b,target", *rows, rows[0]]) + "\n")
    done = run_module("prepare", "--input", "small.csv", "--output", "out", cwd=tmp_path)
    assert done.returncode == cli.EXIT_OK, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["rows_train"] + result["rows_test"] == 21  # the repeated row is kept: rows are observations
    assert result["rows"] == {"raw": 21, "kept": 21, "dropped": {}, "coerced": {}}
    assert "preparing small.csv" in done.stderr
    timings = [line for line in done.stderr.splitlines() if line.startswith(cli.TIMING_PREFIX)]
    assert len(timings) == 1, done.stderr
    timing = json.loads(timings[0].removeprefix(cli.TIMING_PREFIX))
    assert timing["step"] == "prepare"
    assert timing["started"] <= timing["imported"] <= timing["finished"]


def test_process_started_reads_the_start_time_from_proc_stat(tmp_path: Path) -> None:
    five_seconds_ago = time.clock_gettime(time.CLOCK_BOOTTIME) - 5
    fields = ["S", *["0"] * 18, str(int(five_seconds_ago * os.sysconf("SC_CLK_TCK")))]
    stat = tmp_path / "stat"
    stat.write_text(f"42 (python -m (x)) {' '.join(fields)} 0 0\n", encoding="ascii")
    assert abs(cli.process_started(str(stat)) - (time.time() - 5)) < 0.5
    assert cli.process_started(str(tmp_path / "missing")) is None
    assert cli.process_started() <= time.time()


def test_a_step_process_ends_with_its_code_and_its_output_flushed_without_the_teardown(
    tmp_path: Path,
) -> None:
    code = ("import atexit, sys; from pipeline_steps import cli; atexit.register(print, 'teardown'); "
            "print('result'); print('log', file=sys.stderr); cli.exit_process(cli.EXIT_PERMANENT)")
    env = {**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == cli.EXIT_PERMANENT
    assert (done.stdout, done.stderr) == ("result\n", "log\n")


def test_the_exit_codes_are_the_ones_the_dag_repeats() -> None:
    assert (cli.EXIT_OK, cli.EXIT_RETRYABLE, cli.EXIT_PERMANENT) == (0, 1, 3)


def test_only_a_service_that_did_not_answer_is_worth_a_retry() -> None:
    retryable = {cls.__name__ for cls in vars(errors).values()
                 if isinstance(cls, type) and issubclass(cls, errors.PipelineError) and cls.retryable}
    assert retryable == {"ServiceUnreachableError"}
    assert cli.exit_code(errors.ServiceUnreachableError("S3 unreachable")) == cli.EXIT_RETRYABLE
    assert cli.exit_code(errors.DataValidationError("corrupt")) == cli.EXIT_PERMANENT


def test_a_failing_step_prints_nothing_on_stdout_and_exits_permanent(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n")
    done = run_module("prepare", "--input", "bad.csv", "--output", "out", cwd=tmp_path)
    assert done.returncode == cli.EXIT_PERMANENT
    assert done.stdout == ""
    assert [line for line in done.stderr.splitlines() if line.startswith("error: ")] == [
        "error: prepare: target column 'target' not found in bad.csv (columns: a, b, label)"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "x.csv", "--output", "out", "--flag"], "unrecognized arguments: --flag"),
        (["--input", "x.csv"], "the following arguments are required: --output"),
        (["--input", "x.csv", "--data-version", "0" * 32, "--output", "out"], "not allowed with"),
    ],
    ids=["unknown-flag", "missing-argument", "conflicting-arguments"],
)
def test_a_usage_error_prints_one_error_line_and_exits_permanent(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prepare.main(argv) == cli.EXIT_PERMANENT
    captured = capsys.readouterr()
    assert captured.out == ""
    errors_printed = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors_printed) == 1, captured.err
    assert errors_printed[0].startswith("error: prepare: ")
    assert message in errors_printed[0]
    assert captured.err.startswith("usage: python -m pipeline_steps prepare")


def test_help_in_process_exits_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert prepare.main(["--help"]) == cli.EXIT_OK
    assert "--data-version" in capsys.readouterr().out


def test_an_unexpected_exception_keeps_its_traceback_and_pythons_retryable_exit_code() -> None:
    def broken(_args: object, _settings: Settings) -> dict:
        raise ZeroDivisionError("a bug, not a bad input")

    with pytest.raises(ZeroDivisionError):
        cli.run_cli(cli.make_parser("broken", "a step with a bug"), broken, [])
    done = subprocess.run([sys.executable, "-c", "1 / 0"], capture_output=True, check=False)
    assert done.returncode == cli.EXIT_RETRYABLE


@pytest.mark.parametrize(("outside", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_a_step_frees_arrow_memory_through_the_system_allocator_unless_told_otherwise(
    outside: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != cli.ARROW_POOL_VARIABLE}
    env["PYTHONPATH"] = str(Path(cli.__file__).parents[1])
    if outside:
        env[cli.ARROW_POOL_VARIABLE] = outside
    # pandas has imported pyarrow, and so fixed its pool, before any step code runs.
    code = ("import pandas, pyarrow\nfrom pipeline_steps import cli\ncli.return_freed_memory()\n"
            "print(pyarrow.default_memory_pool().backend_name)")
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == expected
