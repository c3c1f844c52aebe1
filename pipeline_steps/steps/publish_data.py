"""Publish a data version: ``dvc add`` and ``dvc push`` a file to the S3 remote, then announce it.

The DVC remote is content-addressed and cannot say which version is newest, so
after the push a small pointer object (``published/<dataset>.json`` in the data
bucket) names the new md5; ``check_data`` reads it. The file is validated first:
a file that ``prepare`` would reject is never published. Runs in a scratch DVC
workspace, so it needs neither git nor this repository, and ``--file -`` reads
the file from stdin, so a container needs no bind mount either.

Once the pointer has moved, an event on the pointer's Airflow Asset (when
AIRFLOW_API_URL is set) starts the DAG within seconds instead of at the next
daily run. If that fails the version is still published, and the error says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline_steps.services import airflow_api
from pipeline_steps.data import appended, tables
from pipeline_steps.data import validation
from pipeline_steps.cli import make_parser, run_cli
from pipeline_steps.data.builtin import BUILTIN, builtin_csv
from pipeline_steps.errors import NotFoundError, PipelineError, ServiceUnreachableError, UsageError
from pipeline_steps.data import versions
from pipeline_steps.data.versions import fetched_version
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage

log = logging.getLogger(__name__)
STDIN = "-"
NOT_ANNOUNCED: dict[str, Any] = {"announced": False, "asset_event_id": None}


def _dvc(workspace: Path, *args: str, env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "dvc", *args]
    done = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        # The bucket and keys were checked just before: a push that fails now met the network.
        error = ServiceUnreachableError if args[0] == "push" else PipelineError
        raise error(f"dvc {' '.join(args)} failed: {detail[-1] if detail else done.returncode}")
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


def dvc_push(settings: Settings, payload: bytes, name: str) -> str:
    """Track ``payload`` as the file ``name`` with DVC, push it to the remote; return its md5."""
    settings.s3.require_credentials()
    with tempfile.TemporaryDirectory(prefix="publish-") as tmp:
        workspace = Path(tmp)
        env = _dvc_env(settings, workspace)
        (workspace / name).write_bytes(payload)
        _dvc(workspace, "init", "--no-scm", "-q", env=env)
        _dvc(workspace, "remote", "add", "-d", "store", settings.s3.dvc_remote_url, env=env)
        if settings.s3.endpoint_url:
            _dvc(workspace, "remote", "modify", "store", "endpointurl", settings.s3.endpoint_url, env=env)
        _dvc(workspace, "add", "-q", name, env=env)
        _dvc(workspace, "push", "-q", env=env)
        dvc_file = (workspace / f"{name}.dvc").read_text()
    match = re.search(r"md5: ([0-9a-f]{32})", dvc_file)
    if not match:
        raise PipelineError(f"dvc add wrote no md5 for {name}")
    return match.group(1)


def _announce_version(settings: Settings, pointer: dict[str, Any]) -> dict[str, Any]:
    """Post the Asset event that starts the DAG; say in the result whether it was posted."""
    if settings.airflow_api is None:
        log.info("AIRFLOW_API_URL is not set: %s version %s is not announced", pointer["dataset"],
                 pointer["md5"])
        return dict(NOT_ANNOUNCED)
    extra = {key: pointer[key] for key in ("md5", "dataset", "path")}
    try:
        event = airflow_api.announce(settings.airflow_api, settings.published_pointer_uri, extra)
    except PipelineError as exc:
        # Same class, so the same exit code: a retry can announce once Airflow is back.
        raise type(exc)(
            f"published {pointer['dataset']} version {pointer['md5']}, but {exc}: "
            "the daily run will pick it up"
        ) from None
    return {"announced": True, "asset_event_id": event.get("id")}


def publish(settings: Settings, store: Storage, payload: bytes, name: str,  # pylint: disable=too-many-arguments
            to_score: bool = False, feedback: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Validate, push and point to ``payload`` as the newest version of the dataset; announce it.

    ``to_score``: a table for batch scoring, published as ``<dataset>_to_score`` (its
    own pointer and Asset, which starts batch_scoring). It needs no labels, so it is
    only checked to be a readable, non-empty table here; predict checks its columns
    against the Production model's.
    ``feedback``: the monitor windows whose labelled rows the version holds, kept in its pointer
    (a model trained on it names them in its provenance: :func:`versions.feedback_windows`).
    """
    frame = tables.load_table(payload, name, settings.csv_delimiter)
    accounting = None
    if to_score:
        settings = dataclasses.replace(settings, dataset_name=settings.scoring_dataset_name)
    else:
        account = validation.clean_for(settings, frame, name).rows
        accounting = account.line(name)
        # Before anything is pushed: a table that loses rows to training says so now.
        (log.warning if account.kept < account.raw or account.coerced else log.info)("%s", accounting)
    store.require_bucket(settings.s3.data_bucket)
    md5 = dvc_push(settings, payload, name)
    if md5 != tables.md5_hex(payload):
        raise PipelineError(f"DVC recorded md5 {md5} for {name}, which does not match its bytes")
    pointer = {
        "dataset": settings.dataset_name,
        "md5": md5,
        "path": name,
        "bytes": len(payload),
        "rows": int(len(frame)),
        **({"accounting": accounting} if accounting else {}),
        **({versions.FEEDBACK_FIELD: feedback} if feedback else {}),
        "remote": settings.s3.dvc_remote_url,
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    store.write_json(versions.history_uri(settings, md5), pointer)
    store.write_json(settings.published_pointer_uri, pointer)  # the pointer moves last
    log.info("published %s version %s", settings.dataset_name, md5)
    return {**pointer, **_announce_version(settings, pointer)}


def append_labelled(settings: Settings, store: Storage, monitored_uri: str) -> dict[str, Any]:
    """After a monitor run (its output location): publish the labelled rows of its window when they
    set off the decay trigger, as :func:`append_rows` does; else a skip saying why."""
    monitored = store.read_result(monitored_uri)
    if not monitored.get("labelled_uri"):
        reason = "no decay trigger"
        log.info("%s", reason)
        return {"dataset": settings.dataset_name, "skip_reason": reason}
    window = {"monitor_run": monitored["run_id"], "model_version": monitored["model_version"],
              "start": monitored["window_start"], "end": monitored["window_end"]}
    return append_rows(settings, store, monitored["labelled_uri"], settings.monitor_min_labelled_rows,
                       window=window)


def append_rows(settings: Settings, store: Storage, rows_uri: str, minimum: int,
                window: dict[str, Any] | None = None) -> dict[str, Any]:
    """Publish the newest version plus the labelled rows at ``rows_uri`` never appended before, when
    there are at least ``minimum`` of them (pipeline_steps/data/appended.py); what was published.

    The ledger records the rows before the version is published, under its md5: a key counts as
    appended only once that version's pointer exists, so a failed publish loses no row and a
    repeated one appends none twice. ``window`` (the monitor run and window the rows come from)
    joins the feedback windows of the version they are appended to, in the new version's pointer.
    """
    if not store.exists(settings.published_pointer_uri):
        raise NotFoundError(f"no version of {settings.dataset_name} is published to append rows to")
    pointer = store.read_json(settings.published_pointer_uri)
    before = appended.ledger(settings, store)
    published_before = {version for version in set(before["data_version"])
                        if store.exists(versions.history_uri(settings, version))}
    done = before[before["data_version"].isin(published_before)]
    offer = appended.new_rows(tables.read_frame(store, rows_uri), done)
    if len(offer.rows) < minimum:
        reason = (f"{len(offer.rows)} of the {offer.offered} labelled rows were not appended before: fewer "
                  f"than MONITOR_MIN_LABELLED_ROWS ({minimum}); no data version published")
        log.info("%s", reason)
        return {"dataset": settings.dataset_name, "skip_reason": reason}
    with fetched_version(settings, store, pointer["md5"]) as path:
        current = path.read_bytes()
    payload = appended.appended_payload(current, pointer["path"], offer.rows, settings.csv_delimiter)
    appended.record(settings, store, done, offer.keys, tables.md5_hex(payload))
    feedback = [*pointer.get(versions.FEEDBACK_FIELD, []), {**window, "rows": len(offer.rows)}] if window \
        else pointer.get(versions.FEEDBACK_FIELD)
    published = publish(settings, store, payload, pointer["path"], feedback=feedback)
    message = (f"published {settings.dataset_name} version {published['md5'][:12]}: version "
               f"{pointer['md5'][:12]} plus {len(offer.rows)} labelled production rows; its event starts "
               "a training run")
    log.info("%s", message)
    return {**published, "appended_rows": len(offer.rows), "offered_rows": offer.offered,
            "appended_to": pointer["md5"], "message": message}


def create_buckets(settings: Settings, store: Storage) -> list[str]:
    """Create the stack's buckets where missing (the stack's init job: safe to run again)."""
    buckets = settings.buckets
    for bucket in buckets:
        store.ensure_bucket(bucket)
    log.info("buckets ready: %s", ", ".join(buckets))
    return buckets


def _read_file(file: str) -> bytes:
    if file == STDIN:
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{file} does not exist") from None


def _handle(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    if args.file == STDIN and not args.name:
        raise UsageError("--name is required with --file - (standard input has no file name)")
    store = Storage(settings.s3)
    if args.create_buckets:
        create_buckets(settings, store)
    if args.if_unpublished and store.exists(settings.published_pointer_uri):
        published = store.read_json(settings.published_pointer_uri)
        log.info("%s already has version %s published", settings.dataset_name, published["md5"])
        return {**published, **NOT_ANNOUNCED, "already_published": True}
    if args.append_labelled:
        return append_labelled(settings, store, args.append_labelled)
    if args.to_score and not args.file:
        raise UsageError("--to-score needs --file: the table to score")
    if args.file:
        return publish(settings, store, _read_file(args.file), args.name or Path(args.file).name,
                       to_score=args.to_score)
    if args.if_unpublished and settings.dataset_name not in BUILTIN:
        log.warning("%r is not a built-in table: publish it with make publish FILE=...",
                    settings.dataset_name)
        return {"dataset": settings.dataset_name, "md5": None, **NOT_ANNOUNCED, "already_published": False}
    payload = builtin_csv(settings.dataset_name, settings.target_column)
    return publish(settings, store, payload, args.name or f"{settings.dataset_name}.csv")


def _file_name(value: str) -> str:
    """A plain file name: it becomes a file in the DVC workspace and the pointer's ``path``."""
    if not value or value != Path(value).name or value.startswith("."):
        raise argparse.ArgumentTypeError(f"must be a plain file name such as churn.csv, got {value!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = make_parser(__name__, __doc__)
    parser.add_argument(
        "--file",
        help="CSV or Parquet file to publish, or - to read it from stdin "
        "(default: the built-in DATASET_NAME table)",
    )
    parser.add_argument(
        "--name", type=_file_name,
        help="file name recorded in the pointer (default: the file's own); required with --file -",
    )
    parser.add_argument(
        "--to-score", action="store_true",
        help="publish the file as a table to score with the Production model (starts batch_scoring)",
    )
    parser.add_argument(
        "--create-buckets", action="store_true", help="first create the stack's buckets if missing"
    )
    parser.add_argument(
        "--append-labelled", default="", metavar="MONITOR_OUTPUT",
        help="after a monitor run (its output location): publish the newest version plus the labelled "
             "rows of its window never appended before, when they set off its decay trigger and "
             "there are MONITOR_MIN_LABELLED_ROWS of them",
    )
    parser.add_argument(
        "--if-unpublished", action="store_true",
        help="publish only when no version of the dataset is published yet (first start of a stack)",
    )
    return run_cli(parser, _handle, argv)
