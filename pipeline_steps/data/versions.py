"""Published data versions: the DVC objects on the S3 remote, fetched and checked by md5.

Training data and tables to score are published the same way (``publish_data``);
prepare and predict read a version through this one door.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Iterator

from pipeline_steps.data import tables
from pipeline_steps.services import storage
from pipeline_steps.errors import DataValidationError, NotFoundError, PipelineError
from pipeline_steps.settings import Settings
from pipeline_steps.services.storage import Storage


def dvc_object_uri(settings: Settings, md5: str) -> str:
    """Where DVC 3 keeps a file of that md5 on the remote (content-addressed)."""
    return storage.join(settings.s3.dvc_remote_url, "files", "md5", md5[:2], md5[2:])


@contextlib.contextmanager
def fetched_version(settings: Settings, store: Storage, md5: str) -> Iterator[Path]:
    """A local file holding a published data version, verified against its md5; removed after."""
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise PipelineError(f"data version {md5!r} is not a DVC md5 (32 hex characters)")
    uri = dvc_object_uri(settings, md5)
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(store.local_file(uri))
        except NotFoundError:
            raise NotFoundError(
                f"data version {md5} is not on the DVC remote {settings.s3.dvc_remote_url}"
            ) from None
        if tables.file_md5(path) != md5:
            raise DataValidationError(f"data version {md5} on the remote is corrupt (md5 mismatch)")
        yield path


@contextlib.contextmanager
def table_file(settings: Settings, store: Storage, *, md5: str | None = None,
               uri: str | None = None) -> Iterator[tuple[Path, str]]:
    """A local file with a published data version (``md5``, verified) or what is at ``uri``, and its md5.

    The md5 is the version id either way: a version's is known and checked once, a
    location's is computed from its file.
    """
    if md5 is not None:
        with fetched_version(settings, store, md5) as path:
            yield path, md5
    else:
        with store.local_file(str(uri)) as path:
            yield path, tables.file_md5(path)


# A published version's pointer lists here the monitor windows whose labelled rows it holds.
FEEDBACK_FIELD = "feedback"
# A tag value stays short whatever the history: the newest windows, and how many earlier ones.
FEEDBACK_TAG_WINDOWS = 5


def history_uri(settings: Settings, md5: str) -> str:
    """Where a published version's pointer is kept for good (the dataset's pointer itself moves on)."""
    return storage.join(f"s3://{settings.s3.data_bucket}", "published", settings.dataset_name, f"{md5}.json")


def feedback_windows(settings: Settings, store: Storage, md5: str) -> list[dict[str, Any]]:
    """The monitor windows whose labelled production rows the published version ``md5`` holds, oldest
    first: none for a version published by hand, or one published before versions kept a history."""
    try:
        return list(store.read_json(history_uri(settings, md5)).get(FEEDBACK_FIELD) or [])
    except NotFoundError:
        return []


def feedback_line(windows: list[dict[str, Any]]) -> str:
    """The windows as one short line, a model version's provenance tag (the newest few, and a count)."""
    shown = [f"monitor run {window['monitor_run']} ({window['rows']} rows, {window['start'] or 'first'} "
             f"to {window['end']})" for window in windows[-FEEDBACK_TAG_WINDOWS:]]
    earlier = len(windows) - len(shown)
    return "; ".join(shown) + (f"; and {earlier} earlier windows" if earlier else "")
