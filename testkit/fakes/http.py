"""The loopback HTTP(S) server under every vendor fake, with fault switches.

``faults`` decides, before a request is handled, whether it fails: a queue of the next N
failures, and optional outage windows on a clock (``[(until, status, retry_after), …]``: every
request before ``until`` seconds on that clock fails so). ``delay`` slows every answer;
``hold`` makes the server do the work and then wait before answering (a client killed while
waiting has caused the effect but never heard so).
"""

import json
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeServer", "Fault", "Faults", "Request", "Response", "make_certificate"]


class _Clock(Protocol):
    def monotonic(self) -> float: ...


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: float | None = None
    body: bytes = b"<html><body><h1>Service Unavailable</h1></body></html>"
    content_type: str = "text/html"
    #: More headers of the answer (e.g. a proxy's ``Content-Encoding`` its body does not have).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Faults:
    queue: deque[Fault] = field(default_factory=deque)
    windows: list[tuple[float, Fault]] = field(default_factory=list)
    clock: _Clock | None = None
    delay: float = 0.0
    hold: threading.Event | None = None
    hold_if: "Callable[[Request], bool] | None" = None
    held: threading.Event = field(default_factory=threading.Event)
    failed: int = 0

    def fail_next(self, count: int, status: int, retry_after: float | None = None, **kw: Any) -> None:
        self.queue.extend(Fault(status, retry_after, **kw) for _ in range(count))

    def outage(self, clock: _Clock, windows: list[tuple[float, Fault]]) -> None:
        """Fail every request until each window's end (seconds on ``clock``), in order."""
        self.clock = clock
        self.windows = windows

    def take(self) -> Fault | None:
        if self.queue:
            self.failed += 1
            return self.queue.popleft()
        if self.clock is not None:
            now = self.clock.monotonic()
            for until, fault in self.windows:
                if now < until:
                    self.failed += 1
                    return fault
        return None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return b"" if self.body is None else json.dumps(self.body).encode()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl), valid two days."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


class FakeServer:
    """Serve ``handle(request) -> Response`` on 127.0.0.1 in a thread, optionally over TLS."""

    def __init__(
        self, handle: Callable[[Request], Response], *, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.faults = Faults()
        self.requests: list[Request] = []
        self._handle = handle
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK

            def log_message(self, fmt: str, *args: Any) -> None:  # type: ignore[override]
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                request = Request(
                    self.command,
                    split.path,
                    dict(parse_qsl(split.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                response = outer._respond(request)
                payload = response.encoded()
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def _respond(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            fault = self.faults.take()
        if self.faults.delay:
            time.sleep(self.faults.delay)
        if fault is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return Response(
                fault.status, fault.body, {**headers, **dict(fault.headers)}, fault.content_type
            )
        with self._lock:
            response = self._handle(request)
        hold, hold_if = self.faults.hold, self.faults.hold_if
        if hold is not None and (hold_if is None or hold_if(request)):
            self.faults.held.set()
            hold.wait(60)
        return response

    def start(self) -> "FakeServer":
        self._thread.start()
        return self

    def close(self) -> None:
        if self.faults.hold is not None:
            self.faults.hold.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
