"""The images built where upstream ones cannot be pulled behave like them: a real container each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from pathlib import Path

import pytest

from tests.images.conftest import Docker, ref, wait_for

S3_KEY, S3_SECRET = "bench-admin", "bench-secret-123"


def test_postgres_honours_the_official_images_environment(
    docker: Docker, container: Callable[..., str], tmp_path: Path
) -> None:
    """POSTGRES_USER/PASSWORD/DB and initdb.d scripts work as with the official image."""
    init = tmp_path / "init.sql"
    init.write_text("CREATE TABLE seeded (name text); INSERT INTO seeded VALUES ('from-initdb');\n")
    init.chmod(0o644)
    name = container(
        "-e", "POSTGRES_USER=ct", "-e", "POSTGRES_PASSWORD=pw-123", "-e", "POSTGRES_DB=ctdb",
        "-v", f"{init}:/docker-entrypoint-initdb.d/init.sql:ro", ref("postgres"),
    )
    wait_for(
        lambda: docker("exec", name, "pg_isready", "-h", "127.0.0.1", check=False).returncode == 0,
        "postgres to accept TCP connections",
    )

    def query(password: str) -> tuple[int, str]:
        done = docker(
            "exec", "-e", f"PGPASSWORD={password}", name, "psql", "-h", "127.0.0.1", "-U", "ct",
            "-d", "ctdb", "-tAc", "SELECT name FROM seeded", check=False,
        )
        return done.returncode, done.stdout.strip()

    assert query("pw-123") == (0, "from-initdb")
    assert query("wrong")[0] != 0
    assert docker("exec", name, "id", "-un").stdout.strip() == "postgres"


def test_seaweedfs_serves_s3_with_the_configured_keys_only(
    docker: Docker, container: Callable[..., str]
) -> None:
    """S3 on :9000 with the keys from the environment; any other key is refused."""
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from botocore.exceptions import ClientError, EndpointConnectionError

    name = container(
        "-e", f"AWS_ACCESS_KEY_ID={S3_KEY}", "-e", f"AWS_SECRET_ACCESS_KEY={S3_SECRET}", ref("seaweedfs")
    )
    networks = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    ip = docker("inspect", "-f", networks, name).stdout.strip()

    def client(key: str, secret: str) -> Any:
        return boto3.client(
            "s3", endpoint_url=f"http://{ip}:9000", aws_access_key_id=key, aws_secret_access_key=secret,
            region_name="us-east-1", config=Config(retries={"max_attempts": 1}, connect_timeout=2),
        )

    s3 = client(S3_KEY, S3_SECRET)

    def bucket_created() -> bool:
        try:
            s3.create_bucket(Bucket="ct-images-test")
        except (ClientError, EndpointConnectionError):
            return False
        return True

    wait_for(bucket_created, "SeaweedFS S3 on :9000 to create a bucket")
    s3.put_object(Bucket="ct-images-test", Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket="ct-images-test", Key="a/b.txt")["Body"].read() == b"hello"
    with pytest.raises(ClientError):
        client("intruder", "not-the-secret").list_objects_v2(Bucket="ct-images-test")
    assert docker("exec", name, "id", "-u").stdout.strip() != "0"
