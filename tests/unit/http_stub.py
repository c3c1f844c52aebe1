"""A real HTTP server on a loopback port, in a thread, that answers as the test says.

It stands in for a service in a state the real one is hard to put in (S3 throttling,
MLflow refusing a Host header) and for Airflow's REST API; it records every request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the server received it; header names in lower case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def query(self, name: str) -> str | None:
        return parse_qs(urlsplit(self.target).query).get(name, [None])[0]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """What the server sends back."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, value: Any) -> Answer:
        return cls(status, json.dumps(value).encode())


@dataclass
class Stub:
    """Where the server listens and what it was asked."""

    url: str
    requests: list[Request] = field(default_factory=list)


@contextmanager
def http_stub(answer: Callable[[Request], Answer]) -> Iterator[Stub]:
    """Serve ``answer(request)`` for every GET, PUT and POST until the block ends."""
    requests: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        """Records the request, sends the answer."""

        def serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            requests.append(request)
            reply = answer(request)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_PUT = do_POST = serve

        def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
            """Quiet: the test reports what matters."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Stub(f"http://127.0.0.1:{server.server_port}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
