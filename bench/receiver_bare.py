"""The storm benchmark's reference: an HTTP handler that only parses the JSON and answers 200.

    .venv/bin/python -m bench.receiver_bare PORT

Same server stack as the receiver (uvicorn), none of its work (no auth, validation or Kafka).
``GET /count`` returns the alerts received so far, so the benchmark can check nothing was lost.
"""

import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def create_app() -> Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]:
    received = {"alerts": 0, "requests": 0}

    async def app(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            document = json.loads(body)
            received["alerts"] += len(document["alerts"])
            received["requests"] += 1
            answer = b'{"status": "accepted"}'
        else:
            answer = json.dumps(received).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        lifespan="off",
        timeout_keep_alive=30,
        backlog=4096,  # as sevflow receiver's
    )
