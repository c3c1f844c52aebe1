"""Read and write bytes at a location that is either a local path or ``s3://bucket/key``.

Steps take every input and output as such a URI, so the same code runs on S3
under Airflow and on local files under ``dvc repro``. S3 errors are turned into
messages that say which endpoint, bucket or key is at fault, and into an error
class that says whether a retry can help: a busy or unreachable S3 may answer a
minute later, a missing key or refused signature never will.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from pipeline_steps.errors import (
    NotFoundError,
    PipelineError,
    RequestRefusedError,
    ServiceUnreachableError,
)
from pipeline_steps.pipeline import RESULT_FILE
from pipeline_steps.settings import S3Settings

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}
# Errors S3 documents as "try again": the service is busy or failed on its side.
_TRANSIENT_CODES = {
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
    "Throttling", "ThrottlingException", "RequestThrottled", "RequestLimitExceeded",
}


def is_s3(uri: str) -> bool:
    """True for ``s3://`` locations."""
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise PipelineError(f"{uri!r} is not a valid s3:// location (no bucket)")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or an S3 URI."""
    if is_s3(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base).joinpath(*parts))


class Storage:
    """Byte I/O on local paths and S3, with one lazily created S3 client."""

    def __init__(self, s3: S3Settings) -> None:
        self._s3 = s3
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The boto3 S3 client; created on first use so local-only runs need no keys."""
        if self._client is None:
            self._s3.require_credentials()
            # Imported here: local-only steps and `--help` must not pay for boto3.
            import boto3  # pylint: disable=import-outside-toplevel
            from botocore.config import Config  # pylint: disable=import-outside-toplevel

            self._client = boto3.client(
                "s3",
                endpoint_url=self._s3.endpoint_url,
                aws_access_key_id=self._s3.access_key_id,
                aws_secret_access_key=self._s3.secret_access_key,
                region_name=self._s3.region,
                config=Config(
                    connect_timeout=5,
                    read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"},
                    signature_version="s3v4",
                ),
            )
        return self._client

    def read_bytes(self, uri: str) -> bytes:
        """The whole object or file; a clear error when it does not exist."""
        if not is_s3(uri):
            try:
                return Path(uri).read_bytes()
            except FileNotFoundError:
                raise NotFoundError(f"{uri} does not exist") from None
        bucket, key = split_s3(uri)
        with self._translate_errors(uri):
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    @contextlib.contextmanager
    def local_file(self, uri: str) -> Iterator[Path]:
        """A file on this machine with what is at ``uri``: the file itself, or the S3 object's
        download, removed afterwards.

        Tables are parsed from a file, not from bytes in memory: a CSV's bytes are about
        twice the frame they become, and a step's peak memory was the two together.
        """
        if not is_s3(uri):
            path = Path(uri)
            if not path.is_file():
                raise NotFoundError(f"{uri} does not exist")
            yield path
            return
        bucket, key = split_s3(uri)
        with tempfile.TemporaryDirectory(prefix="ct-download-") as folder:
            path = Path(folder) / (key.rsplit("/", 1)[-1] or "object")
            # A plain GET streamed to the file, not boto3's download_file: that asks HEAD first,
            # whose errors have no body, and "SlowDown" would reach the user as a bare 503.
            with self._translate_errors(uri), path.open("wb") as file:
                shutil.copyfileobj(self.client.get_object(Bucket=bucket, Key=key)["Body"], file, 1 << 20)
            yield path

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write atomically: a reader never sees half a file, a failure leaves the old one."""
        if not is_s3(uri):
            path = Path(uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
            return
        bucket, key = split_s3(uri)
        with self._translate_errors(uri):
            self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def exists(self, uri: str) -> bool:
        """Whether a file or object is there."""
        if not is_s3(uri):
            return Path(uri).is_file()
        bucket, key = split_s3(uri)
        try:
            with self._translate_errors(uri):
                self.client.head_object(Bucket=bucket, Key=key)
        except NotFoundError:
            return False
        return True

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            with self._translate_errors(f"s3://{bucket}/"):
                self.client.head_bucket(Bucket=bucket)
        except NotFoundError:
            return False
        return True

    def require_bucket(self, bucket: str) -> None:
        """Fail with a clear, permanent error unless the bucket is there (and the keys work)."""
        if not self._bucket_exists(bucket):
            raise NotFoundError(f"S3 bucket {bucket!r} does not exist at {self._endpoint}")

    def ensure_bucket(self, bucket: str) -> None:
        """Create an S3 bucket unless it is already there."""
        if not self._bucket_exists(bucket):
            with self._translate_errors(f"s3://{bucket}/"):
                self.client.create_bucket(Bucket=bucket)

    def read_json(self, uri: str) -> Any:
        """Parse a JSON document; a clear error when it is not JSON."""
        try:
            return json.loads(self.read_bytes(uri))
        except json.JSONDecodeError as exc:
            raise PipelineError(f"{uri} is not valid JSON: {exc.msg}") from None

    def write_json(self, uri: str, value: Any) -> None:
        """Write a JSON document, keys sorted so equal content gives equal bytes."""
        self.write_bytes(uri, json.dumps(value, indent=2, sort_keys=True).encode() + b"\n")

    def write_result(self, output_uri: str, value: dict[str, Any]) -> None:
        """Write a step's result (pipeline.RESULT_FILE), what the next step starts from. Written last."""
        self.write_json(join(output_uri, RESULT_FILE), value)

    def read_result(self, output_uri: str) -> dict[str, Any]:
        """Read the result a finished step left under its output location."""
        uri = join(output_uri, RESULT_FILE)
        try:
            return self.read_json(uri)
        except NotFoundError:
            raise NotFoundError(f"{uri} does not exist: did the step that writes {output_uri} "
                                "finish?") from None

    @property
    def _endpoint(self) -> str:
        return self._s3.endpoint_url or "the default AWS endpoint"

    def _translate_errors(self, uri: str) -> "_S3Errors":
        return _S3Errors(uri, self._endpoint)


class _S3Errors:
    """Context manager turning botocore exceptions into one-line pipeline errors."""

    def __init__(self, uri: str, endpoint: str) -> None:
        self.uri = uri
        self.endpoint = endpoint

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None:
            return False
        # Imported lazily for the same reason as boto3 above.
        from botocore import exceptions as bex  # pylint: disable=import-outside-toplevel

        if isinstance(exc, bex.ConnectionError):  # refused, DNS, connect timeout, proxy, TLS
            raise ServiceUnreachableError(f"S3 unreachable at {self.endpoint}") from None
        if isinstance(exc, bex.HTTPClientError):  # read timeout, connection closed mid-response
            raise ServiceUnreachableError(
                f"S3 at {self.endpoint} did not finish the request on {self.uri}: {exc}"
            ) from None
        if isinstance(exc, bex.ClientError):
            raise self._client_error(exc) from None
        return False

    def _client_error(self, exc: Any) -> PipelineError:
        """The pipeline error for an answer S3 gave: missing, refused, busy or else."""
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = f"{code} {error.get('Message', '')}".strip()
        if code == "NoSuchBucket":
            bucket, _ = split_s3(self.uri)
            return NotFoundError(f"S3 bucket {bucket!r} does not exist at {self.endpoint}")
        if code in _MISSING_CODES:
            return NotFoundError(f"{self.uri} does not exist")
        if code in _AUTH_CODES:
            return RequestRefusedError(
                f"S3 at {self.endpoint} refused access to {self.uri} ({code}): "
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if code in _TRANSIENT_CODES or status >= 500:
            return ServiceUnreachableError(
                f"S3 at {self.endpoint} could not serve {self.uri} for now ({detail or status})"
            )
        return PipelineError(f"S3 error on {self.uri}: {detail}")
