"""A listener that cannot listen stops its role, and ``sevflow run``, at start with one line
naming the address and the variables that choose it. Before, uvicorn's failure to bind came out
of the receiver as a traceback (status 3), ``run`` took it for a crash and restarted the receiver
five times, and the sinks went on without their status page after an error line."""

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sevflow.listeners import listen_problem
from tests.unit.test_cli import run_cli


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_listen_problem_names_the_address_and_the_settings(taken: int) -> None:
    assert listen_problem("127.0.0.1", taken, "SEVFLOW_X") == (
        f"cannot listen on 127.0.0.1:{taken} (SEVFLOW_X): Address already in use"
    )
    assert listen_problem("127.0.0.1", 0, "SEVFLOW_X") is None
    unknown = listen_problem("no-such-host.invalid", 8080, "SEVFLOW_X")
    assert unknown is not None
    assert unknown.startswith("cannot listen on no-such-host.invalid:8080 (SEVFLOW_X): ")


@pytest.mark.parametrize(
    ("role", "setting", "names"),
    [
        ("receiver", "SEVFLOW_HTTP_PORT", "SEVFLOW_HTTP_HOST, SEVFLOW_HTTP_PORT"),
        ("sinks", "SEVFLOW_STATUS_PAGE_PORT", "SEVFLOW_STATUS_PAGE_HOST, SEVFLOW_STATUS_PAGE_PORT"),
        ("run", "SEVFLOW_STATUS_PAGE_PORT", "SEVFLOW_STATUS_PAGE_HOST, SEVFLOW_STATUS_PAGE_PORT"),
    ],
)
def test_a_port_in_use_stops_the_start(
    tmp_path: Path, taken: int, role: str, setting: str, names: str
) -> None:
    env = {
        **os.environ,
        "SEVFLOW_DATA_DIR": str(tmp_path),
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "SEVFLOW_ALLOW_UNAUTHENTICATED": "true",
        "SEVFLOW_HTTP_PORT": "0",
        "SEVFLOW_STATUS_PAGE_PORT": "0",
        setting: str(taken),
    }
    started = run_cli(role, env=env)
    assert started.returncode == 2, started.stderr
    refused = f"sevflow: cannot listen on 127.0.0.1:{taken} ({names}): Address already in use\n"
    assert started.stderr == refused


def test_run_refuses_two_of_its_listeners_on_one_port(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SEVFLOW_DATA_DIR": str(tmp_path),
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "SEVFLOW_ALLOW_UNAUTHENTICATED": "true",
        "SEVFLOW_HTTP_PORT": "18581",
        "SEVFLOW_STATUS_PAGE_HOST": "0.0.0.0",
        "SEVFLOW_STATUS_PAGE_PORT": "18581",
    }
    started = run_cli("run", env=env)
    assert started.returncode == 2, started.stderr
    assert "ask for the same port, 18581" in started.stderr
    assert "SEVFLOW_HTTP_PORT" in started.stderr
    assert "SEVFLOW_STATUS_PAGE_PORT" in started.stderr


@pytest.mark.parametrize(
    "secrets",
    [
        {},
        {"SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS": " "},  # (blank: no callback served)
        {"SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS": "s3cret", "SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN": "acme"},
    ],
)
async def test_the_listeners_checked_are_the_ones_the_receiver_serves(
    tmp_path: Path, secrets: dict[str, str]
) -> None:
    from unittest import mock

    from models.settings import Settings
    from sevflow.roles.receiver import build_receiver, receiver_credentials
    from sevflow.roles.startup import listeners

    env = {"SEVFLOW_DATA_DIR": str(tmp_path), "SEVFLOW_ALLOW_UNAUTHENTICATED": "true", **secrets}
    with mock.patch.dict(os.environ, env, clear=True):
        settings = Settings()
    receiver = build_receiver(settings, receiver_credentials(settings))
    try:
        served = [(c.host, c.port) for c in receiver.configs]
    finally:
        for close in receiver.closers:
            await close()
    assert [(host, port) for host, port, _ in listeners(settings, "receiver")] == served
