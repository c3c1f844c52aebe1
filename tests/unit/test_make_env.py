"""`make up`'s secrets: generated once into .env, and copied into one file each for compose.

The services get secrets as files (compose `secrets:`), never as environment that
`docker inspect` shows; .env stays the one place a person reads or changes them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_steps.settings import SECRETS
from tests.host_scripts import SCRIPTS


def make_env(env_file: Path, **environment: str) -> dict[str, str]:
    """`make up`'s first act, as it runs it: stack.py env-file (with only this environment)."""
    subprocess.run([sys.executable, str(SCRIPTS / "stack.py"), "env-file", str(env_file)], check=True,
                   capture_output=True, env={"PATH": "/usr/bin:/bin", **environment})
    lines = env_file.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_every_secret_of_env_gets_a_file_holding_exactly_its_value(tmp_path: Path) -> None:
    env = make_env(tmp_path / ".env")
    folder = tmp_path / ".env.secrets"
    assert sorted(path.name for path in folder.iterdir()) == sorted(env) == sorted(s.name for s in SECRETS)
    assert len(env) == 25
    for name, value in env.items():
        assert (folder / name).read_text() == value, name
        assert (folder / name).stat().st_mode & 0o777 == 0o644  # a container's own user reads it
    assert folder.stat().st_mode & 0o777 == 0o700  # nobody else on the host gets to the files
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600


def test_a_second_run_keeps_every_secret_and_copies_a_changed_one_into_the_same_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    first = make_env(env_file)
    password = tmp_path / ".env.secrets" / "MLFLOW_ADMIN_PASSWORD"
    inode = password.stat().st_ino
    env_file.write_text(env_file.read_text().replace(first["MLFLOW_ADMIN_PASSWORD"], "changed-by-hand-1"))
    second = make_env(env_file)
    assert second == {**first, "MLFLOW_ADMIN_PASSWORD": "changed-by-hand-1"}
    assert password.read_text() == "changed-by-hand-1"
    assert password.stat().st_ino == inode  # a running container's bind mount still sees it


def test_a_secret_a_newer_stack_added_is_appended_to_an_old_env(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    first = make_env(env_file)
    env_file.write_text("\n".join(f"{k}={v}" for k, v in first.items() if k != "S3_MLFLOW_SECRET_KEY") + "\n")
    second = make_env(env_file)
    assert {k: v for k, v in second.items() if k != "S3_MLFLOW_SECRET_KEY"} == {
        k: v for k, v in first.items() if k != "S3_MLFLOW_SECRET_KEY"}
    assert len(second["S3_MLFLOW_SECRET_KEY"]) == 40
    assert (tmp_path / ".env.secrets" / "S3_MLFLOW_SECRET_KEY").read_text() == second["S3_MLFLOW_SECRET_KEY"]


def test_compose_declares_a_secret_file_for_each_generated_secret(tmp_path: Path) -> None:
    declared = yaml.safe_load((SCRIPTS.parent / "docker-compose.yml").read_text())["secrets"]
    assert sorted(declared) == sorted(make_env(tmp_path / ".env"))
    assert {entry["file"].rsplit("/", 1)[1] for entry in declared.values()} == set(declared)


def test_the_settings_set_in_env_or_in_make_ups_environment_and_no_secret_go_to_the_services(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("QUALITY_THRESHOLD=0.9\nCT_AUTO_APPROVE=true\nNOT_A_SETTING=x\n")
    secrets = make_env(env_file, CT_AUTO_APPROVE="false", CT_NOTIFY_WEBHOOK="http://receiver:9/hook")
    given = dict(line.split("=", 1) for line in (tmp_path / ".env.settings").read_text().splitlines()
                 if not line.startswith("#"))
    assert given == {"QUALITY_THRESHOLD": "0.9", "CT_AUTO_APPROVE": "false",
                     "CT_NOTIFY_WEBHOOK": "http://receiver:9/hook"}
    assert not set(given.values()) & {secrets[secret.name] for secret in SECRETS}


@pytest.mark.parametrize(("lines", "expected"), [
    ("", "EXECUTOR=celery"),
    ("EXECUTOR=local\n", "EXECUTOR=celery"),
])
def test_a_choice_make_up_made_is_recorded_in_env_where_a_person_sees_it(
    tmp_path: Path, lines: str, expected: str
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(lines)
    subprocess.run([sys.executable, str(SCRIPTS / "stack.py"), "remember", "EXECUTOR", "celery"], check=True,
                   env={"PATH": "/usr/bin:/bin", "ENV_FILE": str(env_file)})
    recorded = [line for line in env_file.read_text().splitlines() if line.startswith("EXECUTOR=")]
    assert recorded == [expected]
    got = subprocess.run([sys.executable, str(SCRIPTS / "stack.py"), "get", "EXECUTOR", "local"],
                         capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "ENV_FILE": str(env_file)}).stdout.strip()
    assert got == "celery"
