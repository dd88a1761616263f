"""A stand-in for the organisation's own service, for the verification probes' tests: on a free
loopback port, ``/health`` answers 200 while healthy and 503 otherwise, and ``/metrics`` exposes
the gauge ``sevflow_test_healthy`` (1 or 0) for a real Prometheus to scrape. Flip ``healthy``."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Service"]


class Service:
    def __init__(self, healthy: bool = False) -> None:
        self.healthy = healthy
        self.health_checks = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/health":
                    service.health_checks += 1
                    status = 200 if service.healthy else 503
                    body = b'{"status": "ok"}' if service.healthy else b'{"status": "down"}'
                    content_type = "application/json"
                elif self.path == "/metrics":
                    status = 200
                    body = f"sevflow_test_healthy {int(service.healthy)}\n".encode()
                    content_type = "text/plain; version=0.0.4"
                else:
                    status, body, content_type = 404, b"", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:  # type: ignore[override]
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "Service":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
