"""Senders that trickle a body, or hang up in the middle of one, through a real uvicorn server on
loopback: the receiver answers 408 within its deadline instead of waiting for ever, and a hang-up is
a plain refusal, not an unhandled error."""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from models.access import ApiToken, Scope
from models.alert import AlertRecord
from models.incident import Command
from receiver.access import Credentials
from receiver.app import WEBHOOK_PATH, create_app
from receiver.callbacks import PAGERDUTY_PATH, SLACK_PATH, callback_routes
from receiver.slack_callers import SlackCallers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKEN = "t0ken-with-enough-entropy"
DEADLINE = 0.3


class Publisher:
    async def publish(self, records: Sequence[AlertRecord] | Command) -> None:
        raise AssertionError("nothing may be published")

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        raise AssertionError("nothing was answered")

    async def ready(self) -> bool:
        return True


def receiver() -> Starlette:
    return create_app(
        publisher=Publisher(),
        # One token that may post alerts and acknowledge: every path reads its body.
        auth=Credentials(
            [ApiToken(name="t", scopes={Scope.WEBHOOK, Scope.WRITE}, secret=SecretStr(TOKEN))]
        ),
        now=lambda: NOW,
        body_read_seconds=DEADLINE,
        extra_routes=callback_routes(
            Publisher(),
            slack_signing_secret=SecretStr("slack-secret"),
            # Nobody is looked up: every request here is cut before its body is read.
            slack_callers=SlackCallers(SecretStr("xoxb-unused"), "https://slack.invalid/api/", "T1"),
            pagerduty_secrets=[SecretStr("pd-secret")],
            pagerduty_account="acme",
            body_read_seconds=DEADLINE,
        ),
    )


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(
        receiver(),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=1,  # a request still reading is cut at the end of the test
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it has no event to await
        await asyncio.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task


PATHS = [WEBHOOK_PATH, SLACK_PATH, PAGERDUTY_PATH, "/api/incidents/inc_0123456789abcdef/ack"]


def head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: sevflow.test\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("path", PATHS)
async def test_a_trickled_body_is_408_and_the_connection_closed(port: int, path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head(path, 1000) + b"{")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), DEADLINE + 3)  # read() returns on close
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"error":"request_timeout"' in answer


@pytest.mark.parametrize("path", [SLACK_PATH, PAGERDUTY_PATH])
async def test_a_sender_hanging_up_mid_body_is_no_unhandled_error(
    port: int, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head(path, 1000) + b"{")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(DEADLINE + 0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    logged = [r.getMessage() for r in caplog.records if r.name == "receiver.app"]
    assert any(f"path={path} status=400" in line for line in logged), logged
