"""Shared pieces of the receiver benchmarks: Alertmanager-shaped payloads and a lean HTTP client.

The load generator shares the machine's cores with what it measures, so it is kept cheap: request
bytes are built once, and a keep-alive connection speaks HTTP/1.1 over asyncio streams directly
(httpx would cost more CPU per request than the receiver's own parsing).
"""

import asyncio
import json
from datetime import UTC, datetime

__all__ = ["HttpConnection", "payload", "request_bytes"]


def payload(index: int, alerts: int, *, receiver: str = "sevflow") -> dict[str, object]:
    """An Alertmanager v4 notification of ``alerts`` distinct firing alerts (group ``index``)."""
    name = f"BenchAlert{index}"
    items = []
    for i in range(alerts):
        labels = {"alertname": name, "instance": f"host-{i}:9100", "job": "node", "severity": "page"}
        items.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{name} on host-{i}", "runbook_url": "http://rb/x"},
                "startsAt": datetime(2026, 11, 27, 11, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
                "fingerprint": f"{index:08x}{i:08x}",
            }
        )
    return {
        "receiver": receiver,
        "status": "firing",
        "alerts": items,
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "job": "node", "severity": "page"},
        "commonAnnotations": {"runbook_url": "http://rb/x"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
    }


def request_bytes(port: int, path: str, body: bytes, token: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Alertmanager/0.25.0\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document).encode() + b"\n"  # Go's json.Encoder ends with a newline


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; ``send`` returns the status code."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        assert self._reader is not None
        self._writer.write(raw)
        head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), 30)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if length:
            await self._reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
