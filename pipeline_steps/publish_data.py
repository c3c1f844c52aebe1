"""Publish a data version: ``dvc add`` and ``dvc push`` a file to the S3 remote, then announce it.

The DVC remote is content-addressed and cannot say which version is newest, so
after the push a small pointer object (``published/<dataset>.json`` in the data
bucket) names the new md5; ``check_data`` reads it. The file is validated first:
a file that ``prepare`` would reject is never published. Runs in a scratch DVC
workspace, so it needs neither git nor this repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline_steps import data, storage
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.datasets import builtin_csv
from pipeline_steps.errors import PipelineError
from pipeline_steps.settings import Settings
from pipeline_steps.storage import Storage

log = logging.getLogger(__name__)


def _dvc(workspace: Path, *args: str, env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "dvc", *args]
    done = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise PipelineError(f"dvc {' '.join(args)} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout


def _dvc_env(settings: Settings, workspace: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(workspace / ".site-cache"),
            "AWS_ACCESS_KEY_ID": settings.s3.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": settings.s3.secret_access_key or "",
            "AWS_DEFAULT_REGION": settings.s3.region,
        }
    )
    return env


def dvc_push(settings: Settings, path: Path) -> str:
    """Track ``path`` with DVC and push it to the remote; return the md5 DVC recorded."""
    settings.s3.require_credentials()
    with tempfile.TemporaryDirectory(prefix="publish-") as tmp:
        workspace = Path(tmp)
        env = _dvc_env(settings, workspace)
        shutil.copyfile(path, workspace / path.name)
        _dvc(workspace, "init", "--no-scm", "-q", env=env)
        _dvc(workspace, "remote", "add", "-d", "store", settings.s3.dvc_remote_url, env=env)
        if settings.s3.endpoint_url:
            _dvc(workspace, "remote", "modify", "store", "endpointurl", settings.s3.endpoint_url, env=env)
        _dvc(workspace, "add", "-q", path.name, env=env)
        _dvc(workspace, "push", "-q", env=env)
        dvc_file = (workspace / f"{path.name}.dvc").read_text()
    match = re.search(r"md5: ([0-9a-f]{32})", dvc_file)
    if not match:
        raise PipelineError(f"dvc add wrote no md5 for {path.name}")
    return match.group(1)


def publish(settings: Settings, store: Storage, path: Path) -> dict[str, Any]:
    """Validate, push and announce ``path`` as the newest version of the dataset."""
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path} does not exist") from None
    frame = data.load_table(payload, str(path), settings.csv_delimiter)
    data.validate(frame, settings.target_column, str(path))
    md5 = dvc_push(settings, path)
    if md5 != data.md5_hex(payload):
        raise PipelineError(f"DVC recorded md5 {md5} for {path}, which does not match its bytes")
    pointer = {
        "dataset": settings.dataset_name,
        "md5": md5,
        "path": path.name,
        "bytes": len(payload),
        "rows": int(len(frame)),
        "remote": settings.s3.dvc_remote_url,
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    history = storage.join(
        f"s3://{settings.s3.data_bucket}", "published", settings.dataset_name, f"{md5}.json"
    )
    store.write_json(history, pointer)
    store.write_json(settings.published_pointer_uri, pointer)  # the pointer moves last
    log.info("published %s version %s", settings.dataset_name, md5)
    return pointer


def create_buckets(settings: Settings, store: Storage) -> list[str]:
    """Create the stack's buckets where missing (the stack's init job: safe to run again)."""
    buckets = [settings.s3.data_bucket, settings.s3.artifact_bucket, settings.s3.runs_bucket]
    for bucket in buckets:
        store.ensure_bucket(bucket)
    log.info("buckets ready: %s", ", ".join(buckets))
    return buckets


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    store = Storage(settings.s3)
    if args.create_buckets:
        create_buckets(settings, store)
    if args.if_unpublished and store.exists(settings.published_pointer_uri):
        published = store.read_json(settings.published_pointer_uri)
        log.info("%s already has version %s published", settings.dataset_name, published["md5"])
        return {**published, "already_published": True}
    if args.file:
        return publish(settings, store, Path(args.file))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, f"{settings.dataset_name}.csv")
        path.write_bytes(builtin_csv(settings.dataset_name, settings.target_column))
        return publish(settings, store, path)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser("publish_data", __doc__.splitlines()[0])
    parser.add_argument(
        "--file", help="CSV or Parquet file to publish (default: the built-in DATASET_NAME table)"
    )
    parser.add_argument(
        "--create-buckets", action="store_true", help="first create the stack's buckets if missing"
    )
    parser.add_argument(
        "--if-unpublished", action="store_true",
        help="publish only when no version of the dataset is published yet (first start of a stack)",
    )
    return run_cli(parser, _handle, argv)


if __name__ == "__main__":
    raise SystemExit(main())
