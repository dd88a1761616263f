"""How sevflow's HTTP listeners are served: uvicorn with every limit of :class:`ListenerLimits`.

uvicorn (0.3x) gives two of the limits itself: ``timeout_keep_alive`` closes an idle kept-alive
connection and ``limit_concurrency`` answers 503 once that many connections are open. It has no
header or body read timeout: a connection that never sends, or trickles a header byte every few
seconds (slowloris), or trickles a body the application does not read, is held for ever (its
keep-alive timer starts only after a first response, and every byte received cancels it). With
httptools (its parser when installed, and ours) it has no header size cap either: an 8 MiB header
line is buffered in full and served. With h11, ``h11_max_incomplete_event_size`` caps the headers,
but the refusal is a 400 "Invalid HTTP request received.", not 431.

:class:`GuardedProtocol` adds the missing limits to uvicorn's httptools protocol, at the three
points where a request changes phase (bytes arrive, the headers are complete, the message is
complete), with one timer per connection:

- headers: armed when the connection opens (a silent connection is closed) and at a request's first
  byte on a kept-alive one; cancelled when the headers are complete. Bytes received while headers
  are incomplete are counted; over ``header_bytes`` the answer is 431 (counted per read, so at most
  one read of the transport, 256 KiB, is taken beyond the cap before the refusal);
- body: armed when the headers are complete, cancelled when the body is; else 408.

A refusal is written with ``Connection: close``, then the connection is half-closed and what the
client still sends is read and dropped for at most :data:`LINGER_SECONDS`: closing a socket with
unread data in it resets the connection, and the client then sees ``ECONNRESET`` instead of the
431 (the "lingering close" of Apache and nginx).

The metrics servers of the worker and the sinks (:func:`start_metrics_server`) are
prometheus_client's WSGI server in a thread, behind the optional ``SEVFLOW_METRICS_TOKEN``, with a
socket timeout on each connection; ``/health`` answers without the token.
"""

import asyncio
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from pydantic import SecretStr
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from models.settings.listeners import ListenerLimits
from receiver.auth import WebhookAuth
from receiver.peer import KeepPeer

__all__ = [
    "LINGER_SECONDS",
    "GuardedProtocol",
    "listen_problem",
    "listener_config",
    "start_metrics_server",
]

_TOO_LARGE = ("request_header_fields_too_large", "the request line and headers exceed %d bytes")

log = logging.getLogger("sevflow.listeners")

#: How long a refused connection's further bytes are read and dropped before it is closed.
LINGER_SECONDS = 2.0


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size cap and header and body read timeouts.

    Subclassed per listener by :func:`listener_config`, which sets :attr:`limits`."""

    limits: ClassVar[ListenerLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = True  # between requests, or inside a request's headers
        self._header_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False
        #: A refusal held until the request before it on the connection is answered.
        self._held: bytes | None = None

    # --- the phases of a request --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_seconds, self._headers_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # refused: read and dropped until the client closes or the linger ends
        if self._in_headers:
            if self._timer is None:  # a request's first byte on a kept-alive connection
                self._arm(self.limits.header_seconds, self._headers_timed_out)
            self._header_bytes += len(data)
        super().data_received(data)
        too_large = self._header_bytes > self.limits.header_bytes
        if self._in_headers and too_large and not self.transport.is_closing():
            self._refuse(431, *_TOO_LARGE, self.limits.header_bytes)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        # Exact when the headers came in one read, which data_received cannot tell apart.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.header_bytes:
            self._refuse(431, *_TOO_LARGE, self.limits.header_bytes)
            return
        self._in_headers = False
        self._arm(self.limits.body_seconds, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._in_headers = True
        self._header_bytes = 0
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # --- refusals -------------------------------------------------------------------------------

    def _headers_timed_out(self) -> None:
        self._timer = None
        if self._header_bytes == 0:  # silent, or idle between requests: nothing to answer
            self.transport.close()
            return
        seconds = self.limits.header_seconds
        self._refuse(408, "request_timeout", f"the headers did not arrive within {seconds:g} s")

    def _body_timed_out(self) -> None:
        self._timer = None
        seconds = self.limits.body_seconds
        self._refuse(408, "request_timeout", f"the body did not arrive in full within {seconds:g} s")

    def _refuse(self, status: int, error: str, message: str, *args: object) -> None:
        """Answer ``status`` (unless a response has begun), stop the request, linger, close.
        ``message`` is formatted with ``args``. Once only: headers read whole in one go and over
        the cap are refused while being parsed, then the read that brought them is over it too.

        A request refused in its headers while the one before it on the connection (pipelined)
        is still being answered waits for that answer: written at once, the refusal reached the
        client first, and the earlier request's 200 (its alerts accepted) never did."""
        if self._refused:
            return
        self._disarm()
        self._refused = True
        refusal = _response(status, error, message % args)
        if self._in_headers:
            earlier = self.cycle  # (a new request's cycle begins when its headers are complete)
            if earlier is not None and not earlier.response_complete:
                self._held = refusal
                return
            self.transport.write(refusal)
        else:
            cycle = self.cycle
            if not cycle.response_started:
                self.transport.write(refusal)
            if not cycle.response_complete:
                # What connection_lost does: the application's receive() answers http.disconnect
                # and its send() writes nothing more on this connection.
                cycle.disconnected = True
                cycle.message_event.set()
        self._close_lingering()

    def on_response_complete(self) -> None:
        if self._held is None or self.pipeline:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        self.transport.write(self._held)
        self._held = None
        self._close_lingering()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes its parser refuses (a bad chunk size, Content-Length and
        chunked together, a bare LF): a 400 in JSON like every other refusal (it was plain text),
        held behind an earlier request's answer like them."""
        self._refuse(400, "invalid_http", "the request is not valid HTTP/1.1: %s", msg)

    def _close_lingering(self) -> None:
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._arm(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _response(status: int, error: str, message: str) -> bytes:
    body = json.dumps({"error": error, "message": message}).encode()
    reason = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def listener_config(
    app: Callable[..., Any],
    host: str,
    port: int,
    limits: ListenerLimits,
    *,
    forwarded_allow_ips: str = "127.0.0.1",
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's configuration of one listener: :class:`GuardedProtocol` with ``limits``, the
    keep-alive timeout and the connection cap (503) from them, no WebSocket upgrades (they would
    leave the guarded protocol), no access log, no lifespan; X-Forwarded-For/-Proto believed from
    ``forwarded_allow_ips`` only (``SEVFLOW_FORWARDED_ALLOW_IPS``; uvicorn would otherwise read
    its own environment variable), applied by uvicorn's middleware after :class:`KeepPeer` has
    kept the connection's own address (the console trusts its SSO proxy by that one).
    ``options``: more of uvicorn's."""
    protocol = type("GuardedListener", (GuardedProtocol,), {"limits": limits})
    return uvicorn.Config(
        KeepPeer(ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips)),
        host=host,
        port=port,
        http=protocol,
        ws="none",
        timeout_keep_alive=limits.keep_alive_seconds,
        limit_concurrency=limits.max_connections,
        proxy_headers=False,  # (applied above, after KeepPeer)
        log_config=None,
        access_log=False,
        lifespan="off",
        **options,
    )


def listen_problem(host: str, port: int, settings: str) -> str | None:
    """Why ``host:port`` cannot be listened on now (another process on it, an address that is not
    this host's, a port below 1024 without the right), naming ``settings``, the variables that
    choose it; None: it can. Checked before a listener starts: uvicorn's own failure to bind is a
    log line and a ``SystemExit`` out of its task, which the role printed as a traceback (and
    ``sevflow run`` took for a crash, five times over). Each address the host resolves to is
    tried as asyncio's ``create_server`` binds it (``SO_REUSEADDR``; IPv6 only on IPv6)."""
    where = f"cannot listen on {host}:{port} ({settings})"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:  # (socket.gaierror: a name that resolves to nothing)
        return f"{where}: {exc}"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return f"{where}: {exc.strerror or exc}"
    return None


# --- the worker's and the sinks' /metrics ----------------------------------------------------


class _MetricsHandler(WSGIRequestHandler):
    """No log line per request; a connection silent for ``timeout`` seconds is dropped."""

    timeout = 10.0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def metrics_wsgi_app(registry: Collector, token: SecretStr | None) -> Callable[..., Iterable[bytes]]:
    """``/health`` open; ``/metrics`` the metrics of ``registry``, behind ``token`` if set;
    any other path 404."""
    metrics = make_wsgi_app(registry)
    auth = WebhookAuth(tokens=[token]) if token is not None else None

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ok"}']
        if path != "/metrics":  # (every path served the metrics, as prometheus_client does)
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error":"not_found","message":"this port serves /metrics and /health"}']
        if auth is not None and not auth.allows(environ.get("HTTP_AUTHORIZATION")):
            body = b'{"error":"unauthorized","message":"missing or invalid metrics token"}'
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer realm="sevflow"')],
            )
            return [body]
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


def start_metrics_server(
    port: int, host: str, registry: Collector, token: SecretStr | None
) -> WSGIServer:
    """Serve :func:`metrics_wsgi_app` on ``host:port`` from a daemon thread; raises OSError when
    the port cannot be bound. ``shutdown()`` + ``server_close()`` stop it."""

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

        def handle_error(self, request: Any, client_address: Any) -> None:
            """One line, not socketserver's traceback on stderr: a port scanner, a TCP probe or a
            TLS hello on this port timed out or broke its connection (15 lines each, every one)."""
            problem = sys.exc_info()[1]
            log.debug("metrics connection from %s dropped: %r", client_address, problem)

    server = make_server(
        host, port, metrics_wsgi_app(registry, token), Server, handler_class=_MetricsHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
