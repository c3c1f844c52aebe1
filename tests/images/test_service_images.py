"""The images built where upstream ones cannot be pulled behave like them: a real container each."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    """S3 on :9000 with the keys from the environment; any other key is refused.

    An S3_IDENTITY_<NAME> variable adds a scoped identity (its keys S3_<NAME>_ACCESS_KEY and
    S3_<NAME>_SECRET_KEY): here one that may only read.
    """
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from botocore.exceptions import ClientError, EndpointConnectionError

    name = container(
        "-e", f"S3_ACCESS_KEY={S3_KEY}", "-e", f"S3_SECRET_KEY={S3_SECRET}",
        "-e", "S3_IDENTITY_READER=Read:ct-images-test,List:ct-images-test",
        "-e", "S3_READER_ACCESS_KEY=reader", "-e", "S3_READER_SECRET_KEY=reader-secret-1",
        ref("seaweedfs"),
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
    reader = client("reader", "reader-secret-1")
    assert reader.get_object(Bucket="ct-images-test", Key="a/b.txt")["Body"].read() == b"hello"
    with pytest.raises(ClientError, match="AccessDenied"):
        reader.put_object(Bucket="ct-images-test", Key="a/c.txt", Body=b"no")
    assert docker("exec", name, "id", "-u").stdout.strip() != "0"


REFUSED = "refused by the stack's Docker API proxy: "


@pytest.fixture
def proxied(docker: Docker, container: Callable[..., str]) -> Any:
    """A Docker API client that reaches the daemon only through a ct-docker-proxy container."""
    import docker as docker_sdk  # pylint: disable=import-outside-toplevel

    gid = str(os.stat("/var/run/docker.sock").st_gid)
    name = container("--group-add", gid, "-v", "/var/run/docker.sock:/var/run/docker.sock",
                     ref("docker-proxy"))
    networks = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    url = f"tcp://{docker('inspect', '-f', networks, name).stdout.strip()}:2375"
    client = docker_sdk.APIClient(base_url=url, version="1.41", timeout=60)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except (docker_sdk.errors.DockerException, OSError):  # not listening yet
            return False

    wait_for(answers, "the Docker API proxy to answer /_ping")
    yield client
    for leftover in client.containers(all=True, filters={"label": "ct.test=proxy"}):
        docker("rm", "-f", leftover["Id"], check=False)


def refusal(call: Callable[[], Any]) -> str:
    """The proxy's 403 message for a call that must be refused."""
    import docker as docker_sdk  # pylint: disable=import-outside-toplevel

    with pytest.raises(docker_sdk.errors.APIError) as refused:
        call()
    assert refused.value.status_code == 403, refused.value
    message = str(refused.value.explanation)
    assert message.startswith(REFUSED), message
    return message[len(REFUSED):]


def post_json(client: Any, path: str, body: str) -> Callable[[], Any]:
    """A raw JSON POST, spelled exactly as given (escapes and key case are the point)."""
    def call() -> Any:
        response = client.post(client.base_url + path, data=body.encode(),
                               headers={"Content-Type": "application/json"})
        client._raise_for_status(response)  # pylint: disable=protected-access
        return response
    return call


def test_docker_proxy_passes_a_step_container_the_way_docker_operator_runs_it(proxied: Any) -> None:
    """Create (with DockerOperator's own host config), attach, start, wait, logs, inspect, remove."""
    from docker.types import LogConfig  # pylint: disable=import-outside-toplevel

    assert proxied.images(name=ref("check-data"))
    host_config = proxied.create_host_config(
        auto_remove=False, mounts=[], network_mode="bridge", shm_size=None, dns=None, dns_search=None,
        cpu_shares=1024, port_bindings={}, mem_limit=None, cap_add=None, extra_hosts=None,
        privileged=False, device_requests=None, log_config=LogConfig(config={}), ipc_mode=None,
        ulimits=None,
    )
    created = proxied.create_container(
        image=ref("check-data"), command=["--help"], environment={"SECRET": "x"},
        host_config=host_config, labels={"ct.test": "proxy"}, ports=[], tty=False,
    )
    stream = proxied.attach(created["Id"], stdout=True, stderr=True, stream=True)
    proxied.start(created["Id"])
    attached = b"".join(stream).decode()
    assert proxied.wait(created["Id"])["StatusCode"] == 0
    assert "usage:" in attached
    assert proxied.logs(created["Id"], stdout=True, stderr=False).decode().startswith("usage:")
    assert proxied.inspect_container(created["Id"])["State"]["ExitCode"] == 0
    proxied.remove_container(created["Id"], force=True)


@pytest.mark.parametrize(("why", "host_config"), [
    ("privileged", {"Privileged": True}),
    ("host bind mount", {"Binds": ["/:/host"]}),
    ("bind mount", {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}),
    ("another container's volumes", {"VolumesFrom": ["ct-postgres-1"]}),
    ("host network", {"NetworkMode": "host"}),
    ("host PID namespace", {"PidMode": "host"}),
    ("added capability", {"CapAdd": ["SYS_ADMIN"]}),
    ("device", {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]}),
    ("security option", {"SecurityOpt": ["apparmor=unconfined"]}),
])
def test_docker_proxy_refuses_a_create_that_reaches_the_host(
    proxied: Any, why: str, host_config: dict[str, Any]
) -> None:
    """Each door to the host in a create body is refused, and no container is made."""
    body = json.dumps({"Image": ref("check-data"), "Labels": {"ct.test": "proxy"},
                       "HostConfig": {"NetworkMode": "bridge", **host_config}})
    message = refusal(post_json(proxied, "/v1.41/containers/create", body))
    assert next(iter(host_config)) in message, (why, message)
    assert proxied.containers(all=True, filters={"label": "ct.test=proxy"}) == []


@pytest.mark.parametrize("spelling", [
    '"privileged": true',           # Go's decoder matches keys case-insensitively
    '"Privil\\u0065ged": true',     # and reads \u escapes in keys
    '"Bind\\u017f": ["/:/host"]',   # and folds Unicode: long s (U+017F) is s, so this is Binds
])
def test_docker_proxy_judges_the_key_the_daemon_would_read_not_its_spelling(
    proxied: Any, spelling: str
) -> None:
    body = '{"Image": "%s", "Labels": {"ct.test": "proxy"}, "HostConfig": {%s}}' % (
        ref("check-data"), spelling)
    refusal(post_json(proxied, "/v1.41/containers/create", body))
    assert proxied.containers(all=True, filters={"label": "ct.test=proxy"}) == []


def test_docker_proxy_refuses_exec_build_pull_volumes_networks_and_old_api_versions(
    proxied: Any, docker: Docker, container: Callable[..., str]
) -> None:
    running = container("--label", "ct.test=proxy", "--entrypoint", "sleep", ref("check-data"), "60")
    assert "/exec" in refusal(lambda: proxied.exec_create(running, ["id"]))
    assert "/build" in refusal(lambda: list(proxied.build(fileobj=io.BytesIO(b"FROM scratch\n"))))
    assert "/images/create" in refusal(lambda: proxied.pull("busybox", tag="latest"))
    assert "/volumes/create" in refusal(lambda: proxied.create_volume("ct-proxy-test"))
    assert "/networks/create" in refusal(lambda: proxied.create_network("ct-proxy-test"))
    assert "/info" in refusal(proxied.info)
    # API 1.23 and older still read a HostConfig in a start request's body.
    assert "1.23" in refusal(post_json(proxied, f"/v1.23/containers/{running}/start",
                                       '{"Privileged": true}'))
    assert docker("volume", "ls", "-q", "--filter", "name=ct-proxy-test").stdout.strip() == ""


def test_mlflow_carries_its_basic_auth_app(docker: Docker) -> None:
    """The stack runs `mlflow server --app-name basic-auth`: the app and its Flask-WTF are in the image."""
    script = "import flask_wtf, mlflow.server.auth; print('ok')"
    done = docker("run", "--rm", "--entrypoint", "python", ref("mlflow"), "-c", script)
    assert done.stdout.strip() == "ok", done.stderr


def test_mlflow_start_script_names_what_is_missing(docker: Docker) -> None:
    """ct-mlflow-server (images/mlflow/server.sh) writes the auth config at start; it names what is unset."""
    done = docker("run", "--rm", "-e", "MLFLOW_BACKEND_STORE_URI=sqlite:////tmp/m.db", "--entrypoint",
                  "ct-mlflow-server", ref("mlflow"), check=False)
    assert done.returncode != 0
    assert "MLFLOW_AUTH_ADMIN_PASSWORD must be set" in done.stderr
