"""Reading a request body with a size cap and a deadline, and asking whether its sender is still
there."""

import asyncio
import inspect
from collections.abc import Coroutine

from starlette.requests import Request

__all__ = ["BODY_READ_SECONDS", "BodyTooLarge", "BodyTooSlow", "hung_up", "read_capped"]

#: How long a body may take to arrive in full. Alertmanager, Slack and PagerDuty send theirs at
#: once (a megabyte takes milliseconds on their links); a sender trickling bytes would otherwise
#: hold its connection and its partial body for as long as it likes (uvicorn has no such timeout).
BODY_READ_SECONDS = 30.0


class BodyTooLarge(Exception):
    """The body is (or declares itself) larger than the cap: answer 413."""


class BodyTooSlow(Exception):
    """The body did not arrive in full within the deadline: answer 408 and close."""


async def read_capped(request: Request, limit: int, deadline: float = BODY_READ_SECONDS) -> bytes:
    """Read the body, stopping as soon as it exceeds ``limit`` bytes or ``deadline`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and _declares_more(declared.strip(), limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(chunks)


def _declares_more(declared: str, limit: int) -> bool:
    """True when a Content-Length of ASCII digits exceeds ``limit``; anything else is left to the
    streamed count. (``str.isdigit`` also takes "²", which ``int`` refuses, and ``int`` refuses
    over 4300 digits: both were a 500.)"""
    if not (declared.isascii() and declared.isdigit()):
        return False
    significant = declared.lstrip("0")
    return len(significant) > len(str(limit)) or int(significant or "0") > limit


async def hung_up(request: Request) -> bool:
    """True when the sender has disconnected; never waits. Call only after the body was read.

    Once the body is read, the ASGI ``receive`` either answers at once (``http.disconnect``) or
    would wait for the connection to close; running its coroutine one step tells which, and closing
    it then withdraws the wait. Starlette's ``Request.is_disconnected`` asks the same through an anyio
    cancel scope, which formats the task's repr on every call: on a one-alert payload that cost
    more than validating it.
    """
    if not inspect.iscoroutinefunction(request.receive):  # no server we know: the slow way
        return await request.is_disconnected()
    probe = request.receive()
    assert isinstance(probe, Coroutine)
    try:
        probe.send(None)
    except StopIteration as answered:
        message = answered.value
        return isinstance(message, dict) and message.get("type") == "http.disconnect"
    finally:
        probe.close()
    return False
