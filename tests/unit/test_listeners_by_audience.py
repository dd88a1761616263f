"""Listeners by audience, through the real ``sevflow receiver`` process: the internal listener
serves the webhook, the API and ``/metrics`` and no vendor callback; the public callbacks listener
serves Slack's and PagerDuty's callbacks and nothing else. ``/metrics`` of every role requires
``SEVFLOW_METRICS_TOKEN`` when it is set; ``/health`` never does.

No Kafka is needed: every request here is refused or answered before anything is published."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from sevflow.listeners import _MetricsHandler, start_metrics_server
from testkit.local import REPO, free_port

METRICS_TOKEN = "metrics-t0ken-with-entropy"
WEBHOOK_TOKEN = "webhook-t0ken-with-entropy"


def wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float = 60.0) -> None:
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if process.poll() is not None:
            pytest.fail(f"the receiver exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def listeners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    internal, callbacks = free_port(), free_port()
    data = tmp_path_factory.mktemp("receiver")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")},
        "SEVFLOW_DATA_DIR": str(data),
        "SEVFLOW_HTTP_PORT": str(internal),
        "SEVFLOW_CALLBACKS_PORT": str(callbacks),
        "SEVFLOW_WEBHOOK_TOKENS": WEBHOOK_TOKEN,
        "SEVFLOW_SLACK_SIGNING_SECRET": "slack-signing-secret",
        "SEVFLOW_SLACK_TEAM_ID": "T0001",
        "SEVFLOW_SLACK_TOKEN": "xoxb-listeners-test",  # (Slack is never asked: no button pressed)
        "SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS": "pagerduty-secret",
        "SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN": "acme",
        "SEVFLOW_METRICS_TOKEN": METRICS_TOKEN,
        "SEVFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",  # nobody: nothing is published
    }
    log = (data / "receiver.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sevflow", "receiver"],
        env=environment,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_listening(internal, process)
        wait_listening(callbacks, process)
        yield internal, callbacks
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


VENDOR_CALLBACKS = ["/callbacks/slack/interactivity", "/callbacks/pagerduty"]


@pytest.mark.parametrize("path", VENDOR_CALLBACKS)
def test_vendor_callbacks_are_served_only_on_the_callbacks_listener(
    listeners: tuple[int, int], path: str
) -> None:
    internal, callbacks = listeners
    on_internal = httpx.post(f"http://127.0.0.1:{internal}{path}", content=b"{}")
    on_public = httpx.post(f"http://127.0.0.1:{callbacks}{path}", content=b"{}")
    assert on_internal.status_code == 404
    assert on_internal.json()["error"] == "not_found"
    assert on_public.status_code == 401  # served there: the signature is checked


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/webhooks/alertmanager"),
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),
        ("GET", "/api/incidents"),
        ("POST", "/api/incidents/inc_0123456789abcdef/ack"),
    ],
)
def test_internal_routes_are_404_on_the_callbacks_listener(
    listeners: tuple[int, int], method: str, path: str
) -> None:
    internal, callbacks = listeners
    on_public = httpx.request(method, f"http://127.0.0.1:{callbacks}{path}")
    assert on_public.status_code == 404
    on_internal = httpx.request(method, f"http://127.0.0.1:{internal}{path}")
    assert on_internal.status_code != 404


def test_receiver_metrics_need_the_token_and_health_does_not(listeners: tuple[int, int]) -> None:
    internal, _ = listeners
    url = f"http://127.0.0.1:{internal}"
    assert httpx.get(f"{url}/metrics").status_code == 401
    wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 401
    assert METRICS_TOKEN not in wrong.text
    right = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200
    assert "http_requests_total" in right.text
    assert httpx.get(f"{url}/health").status_code == 200


@pytest.mark.parametrize("token", [SecretStr(METRICS_TOKEN), None])
def test_worker_and_sinks_metrics_server_need_the_token_when_set(token: SecretStr | None) -> None:
    registry = CollectorRegistry()
    Counter("sevflow_test_things", "Things.", registry=registry).inc()
    port = free_port()
    server = start_metrics_server(port, "127.0.0.1", registry, token)
    try:
        url = f"http://127.0.0.1:{port}"
        plain = httpx.get(f"{url}/metrics")
        bearer = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        health = httpx.get(f"{url}/health")
    finally:
        server.shutdown()
        server.server_close()
    assert plain.status_code == (401 if token else 200)
    assert bearer.status_code == 200
    assert "sevflow_test_things_total 1.0" in bearer.text
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


def test_the_metrics_server_answers_other_paths_404_and_drops_silent_connections_quietly(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every path served the metrics; a silent connection (a TCP probe, a port scanner) timed
    out into socketserver's traceback on stderr, 15 lines per connection."""
    monkeypatch.setattr(_MetricsHandler, "timeout", 0.2)
    registry = CollectorRegistry()
    port = free_port()
    server = start_metrics_server(port, "127.0.0.1", registry, None)
    try:
        other = httpx.get(f"http://127.0.0.1:{port}/anything")
        with socket.create_connection(("127.0.0.1", port)) as silent:
            silent.settimeout(5)
            assert silent.recv(1) == b""  # closed by the server once its timeout passed
    finally:
        server.shutdown()
        server.server_close()
    assert (other.status_code, other.json()["error"]) == (404, "not_found")
    assert "Traceback" not in capfd.readouterr().err
