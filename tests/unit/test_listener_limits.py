"""The limits every listener enforces (sevflow/listeners.py), through a real uvicorn server on
loopback serving the receiver (and the built-in status page, the other public one), attacked with
raw TCP connections: silent and trickling connections are closed within their timeout while real
requests go on being answered, an oversized header is 431, and the connection cap answers 503."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.alert import AlertRecord
from models.settings.listeners import ListenerLimits
from receiver.app import WEBHOOK_PATH, create_app
from receiver.auth import WebhookAuth
from sevflow.listeners import listener_config
from sevflow.roles.sinks import create_sink_tables
from sinks.status_server import create_status_app
from store.db import async_engine
from store.status_page import StatusPageStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKEN = "t0ken-with-enough-entropy"
#: Slack for a loaded machine: "closed within the timeout" means within it plus this.
MARGIN = 5.0

LIMITS = ListenerLimits(
    header_bytes=8192,
    header_seconds=0.5,
    body_seconds=0.5,
    keep_alive_seconds=5,
    max_connections=200,
)


class Publisher:
    async def publish(self, records: Sequence[AlertRecord]) -> None:
        raise AssertionError("nothing may be published")

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        raise AssertionError("nothing was answered")

    async def ready(self) -> bool:
        return True


def receiver() -> Starlette:
    return create_app(publisher=Publisher(), auth=WebhookAuth([SecretStr(TOKEN)]), now=lambda: NOW)


async def serve(limits: ListenerLimits, app: Starlette | None = None) -> AsyncIterator[int]:
    config = listener_config(app or receiver(), "127.0.0.1", 0, limits, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it has no event to await
        await asyncio.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async for bound in serve(LIMITS):
        yield bound


async def closed_after(reader: asyncio.StreamReader, deadline: float) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and how long that took."""
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), deadline)  # read() returns at EOF
    return answer, time.monotonic() - started


async def health(client: httpx.AsyncClient, port: int) -> int:
    response = await client.get(f"http://127.0.0.1:{port}/health")
    return response.status_code


async def trickle(writer: asyncio.StreamWriter, data: bytes, pause: float) -> None:
    """Send ``data`` a byte at a time until the server hangs up."""
    try:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(pause)
    except ConnectionError:
        pass


async def test_silent_connections_are_closed_within_the_header_timeout(port: int) -> None:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
    async with httpx.AsyncClient() as client:
        assert [await health(client, port) for _ in range(5)] == [200] * 5  # served meanwhile
    results = await asyncio.gather(
        *(closed_after(reader, LIMITS.header_seconds + MARGIN) for reader, _ in connections)
    )
    for answer, _ in results:
        assert answer == b""  # nothing was asked: closed without an answer
    for _, writer in connections:
        writer.close()


async def test_trickled_headers_are_cut_off_with_408_while_real_requests_get_through(
    port: int,
) -> None:
    request = f"GET /health HTTP/1.1\r\nHost: sevflow.test\r\nX-Padding: {'a' * 200}\r\n\r\n"
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
    trickles = [asyncio.create_task(trickle(w, request.encode(), 0.05)) for _, w in connections]
    async with httpx.AsyncClient() as client:
        statuses = []
        for _ in range(5):
            statuses.append(await health(client, port))
            await asyncio.sleep(0.05)
    assert statuses == [200] * 5
    results = await asyncio.gather(
        *(closed_after(reader, LIMITS.header_seconds + MARGIN) for reader, _ in connections)
    )
    await asyncio.gather(*trickles)
    for answer, _ in results:
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "request_timeout"
    for _, writer in connections:
        writer.close()


async def test_a_kept_alive_connection_trickling_its_next_request_is_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: sevflow.test\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), MARGIN)
    assert first.startswith(b"HTTP/1.1 200 ")
    sending = asyncio.create_task(trickle(writer, b"GET /health HTTP/1.1\r\nHost: x\r\n" * 20, 0.05))
    answer, _ = await closed_after(reader, LIMITS.header_seconds + MARGIN)
    await sending
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_a_trickled_body_is_cut_off_with_408(port: int) -> None:
    """The protocol's body timeout, whatever the route does with the body: here the receiver's
    own (longer) body deadline never fires first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: sevflow.test\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode())
    sending = asyncio.create_task(trickle(writer, b"{" * 1000, 0.05))
    answer, _ = await closed_after(reader, LIMITS.body_seconds + MARGIN)
    await sending
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"body did not arrive" in answer


async def test_a_trickled_body_the_route_does_not_read_is_cut_off(port: int) -> None:
    """GET /health answers without reading a body; the connection is still closed in time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: sevflow.test\r\nContent-Length: 100000\r\n\r\n")
    sending = asyncio.create_task(trickle(writer, b"x" * 100000, 0.05))
    answer, _ = await closed_after(reader, LIMITS.body_seconds + MARGIN)
    await sending
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")  # answered, then cut off


@pytest.mark.parametrize("size", [LIMITS.header_bytes + 1, 8 * 1024 * 1024])
async def test_an_oversized_header_line_is_431(
    port: int, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = b"X-Big: " + b"a" * size + b"\r\n"
    writer.write(b"GET /health HTTP/1.1\r\nHost: sevflow.test\r\n" + line + b"\r\n")
    # The server stops reading once it has answered: the answer is there all the same.
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    answer, _ = await closed_after(reader, LIMITS.header_seconds + MARGIN)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["error"] == "request_header_fields_too_large"
    assert str(LIMITS.header_bytes) in body["message"]
    async with httpx.AsyncClient() as client:
        assert await health(client, port) == 200
    # Refused once: headers read whole in one go were refused twice, the second time writing
    # after the end of the stream ("Fatal error on transport", logged by asyncio).
    assert answer.count(b"HTTP/1.1 431 ") == 1
    assert "Fatal error" not in caplog.text


async def test_headers_within_the_cap_are_served(port: int) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/health", headers={"X-Padding": "a" * 7000})
    assert response.status_code == 200


async def test_beyond_the_connection_cap_requests_are_503() -> None:
    limits = ListenerLimits(
        header_bytes=8192, header_seconds=60, body_seconds=60, keep_alive_seconds=5, max_connections=4
    )
    async for port in serve(limits):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        async with httpx.AsyncClient() as client:
            assert await health(client, port) == 503  # the 4th connection open
            for _, writer in held:
                writer.close()
                await writer.wait_closed()
            for _ in range(100):  # the server notices the closes on its next loop turns
                if await health(client, port) == 200:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("still 503 once the held connections were closed")


async def test_the_status_page_listener_has_the_same_limits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sevflow.db'}"
    create_sink_tables(url)
    engine = async_engine(url)
    try:
        app = create_status_app(StatusPageStore(engine), lambda: NOW, "Acme")
        async for port in serve(LIMITS, app):
            silent = await asyncio.open_connection("127.0.0.1", port)
            big_reader, big_writer = await asyncio.open_connection("127.0.0.1", port)
            big_writer.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                await big_writer.drain()
            async with httpx.AsyncClient() as client:
                page = await client.get(f"http://127.0.0.1:{port}/")
            assert page.status_code == 200
            assert "Acme" in page.text
            big, _ = await closed_after(big_reader, LIMITS.header_seconds + MARGIN)
            assert big.startswith(b"HTTP/1.1 431 ")
            nothing, _ = await closed_after(silent[0], LIMITS.header_seconds + MARGIN)
            assert nothing == b""
            for writer in (silent[1], big_writer):
                writer.close()
    finally:
        await engine.dispose()


def _slow_app() -> Starlette:
    """A route that takes a while to answer, as the webhook does while Kafka acknowledges."""

    async def slow(request: Request) -> Response:
        await request.body()
        await asyncio.sleep(0.3)
        return JSONResponse({"status": "accepted"})

    return Starlette(routes=[Route("/slow", slow, methods=["POST"])])


@pytest.mark.parametrize(
    ("second", "status", "error"),
    [
        (b"GARBAGE \x00\r\n\r\n", 400, "invalid_http"),
        (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", 431, None),
    ],
)
async def test_a_refused_pipelined_request_waits_for_the_answer_before_it(
    second: bytes, status: int, error: str | None
) -> None:
    """A webhook POST followed on the same connection by bytes that are refused: the refusal
    was written at once, the client read it first and never the 200 of the alerts accepted."""
    async for port in serve(LIMITS, _slow_app()):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"
        writer.write(first + second)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        answer, _ = await closed_after(reader, 2 * MARGIN)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        refusal = answer[answer.index(b"HTTP/1.1 ", 10) :]
        assert refusal.startswith(b"HTTP/1.1 %d " % status)
        assert b"content-type: application/json" in refusal
        if error is not None:
            assert json.loads(refusal.partition(b"\r\n\r\n")[2])["error"] == error


async def test_bytes_the_parser_refuses_get_a_json_400(port: int) -> None:
    """uvicorn answered them with a plain-text "Invalid HTTP request received."."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    answer, _ = await closed_after(reader, LIMITS.header_seconds + MARGIN)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "invalid_http"
