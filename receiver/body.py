"""Reading a request body with a size cap, without ever buffering more than the cap."""

from starlette.requests import Request

__all__ = ["BodyTooLarge", "read_capped"]


class BodyTooLarge(Exception):
    """The body is (or declares itself) larger than the cap: answer 413."""


async def read_capped(request: Request, limit: int) -> bytes:
    """Read the body, stopping as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
