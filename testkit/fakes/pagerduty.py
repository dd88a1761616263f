"""A fake PagerDuty Events API v2 (contracts §2.6), served over TLS like the real one.

Validates what PagerDuty validates (routing_key of 32 characters, event_action, trigger payload
summary/source/severity, lengths: summary ≤ 1024 characters, dedup_key ≤ 255, the whole event
≤ 512 KB, read as 512,000 bytes of the request body) and answers
``400 {"status": "invalid event", ...}`` or
``202 {"status": "success", "message": "Event processed", "dedup_key": …}``. Keeps one alert per
(routing_key, dedup_key): trigger opens or keeps it, acknowledge/resolve change it, and are dropped
(still 202) for unknown or resolved alerts; a trigger after resolve opens a new alert.

:meth:`FakePagerDuty.fail_dedup_key` makes the events of one dedup_key fail (a 5xx) until a time
on a clock, while every other dedup_key is served: one incident's trouble, not PagerDuty's.
"""

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from testkit.fakes.http import FakeServer, Request, Response

__all__ = ["FakePagerDuty", "PdAlert"]

SEVERITIES = {"critical", "error", "warning", "info"}
EVENT_MAX_BYTES = 512_000  # contracts §2.2: "Payload size limit: 512 KB"
ACTIONS = {"trigger", "acknowledge", "resolve"}


class _Clock(Protocol):
    def monotonic(self) -> float: ...


@dataclass
class PdAlert:
    routing_key: str
    dedup_key: str
    status: str
    summary: str
    severity: str
    history: list[str] = field(default_factory=list)


def _invalid(*errors: str) -> Response:
    return Response(
        400, {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}
    )


class FakePagerDuty:
    def __init__(self, tls: tuple[Path, Path]) -> None:
        self.server = FakeServer(self._handle, tls=tls)
        self.events: list[dict[str, Any]] = []  # accepted (202) events, in order
        self.alerts: list[PdAlert] = []
        self.first_seen: dict[str, float] = {}  # dedup_key -> time.monotonic() of its first event
        #: dedup_key -> (status, until, clock): valid events of that key fail so until then.
        self.failing: dict[str, tuple[int, float, _Clock]] = {}
        #: dedup_key -> how many of its events were answered with a failure.
        self.failed: dict[str, int] = {}

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def faults(self):  # type: ignore[no-untyped-def]
        return self.server.faults

    def start(self) -> "FakePagerDuty":
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def fail_dedup_key(self, dedup_key: str, *, until: float, clock: _Clock, status: int = 500) -> None:
        """Answer ``status`` to every valid event of ``dedup_key`` until ``until`` on ``clock``."""
        self.failing[dedup_key] = (status, until, clock)

    def actions(self, dedup_key: str | None = None) -> list[str]:
        return [
            e["event_action"]
            for e in self.events
            if dedup_key is None or e.get("dedup_key") == dedup_key
        ]

    def _open(self, routing_key: str, dedup_key: str) -> PdAlert | None:
        for alert in reversed(self.alerts):
            if (
                alert.routing_key == routing_key
                and alert.dedup_key == dedup_key
                and alert.status != "resolved"
            ):
                return alert
        return None

    def _handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path not in ("/v2/enqueue", "/v2/change/enqueue"):
            return Response(404, {"status": "Not Found", "message": "Not Found", "errors": []})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _invalid("Content-Type must be application/json")
        if len(request.body) > EVENT_MAX_BYTES:
            return _invalid(f"Event object is {len(request.body)} bytes, over the 512 KB limit")
        try:
            event = json.loads(request.body)
        except ValueError:
            return Response(
                400,
                {"status": "Unrecognized object", "message": "Event object format is unrecognized",
                 "errors": ["JSON parse error"]},
            )  # fmt: skip
        if not isinstance(event, dict):
            return _invalid("Event must be a JSON object")
        errors = self._validate(event)
        if errors:
            return _invalid(*errors)
        if request.path == "/v2/change/enqueue":
            return Response(202, {"status": "success", "message": "Change event processed"})
        key = event.get("dedup_key") or str(uuid.uuid4())
        failing = self.failing.get(key)
        if failing is not None and failing[2].monotonic() < failing[1]:
            self.failed[key] = self.failed.get(key, 0) + 1
            return Response(failing[0], {"status": "error", "message": "Internal Server Error"})
        self.events.append(event)
        self.first_seen.setdefault(key, time.monotonic())
        action, routing_key = event["event_action"], event["routing_key"]
        alert = self._open(routing_key, key)
        if action == "trigger":
            payload = event["payload"]
            if alert is None:
                alert = PdAlert(routing_key, key, "triggered", payload["summary"], payload["severity"])
                self.alerts.append(alert)
            alert.history.append("trigger")
        elif alert is not None:  # ack/resolve of unknown or resolved alerts are dropped
            alert.status = "acknowledged" if action == "acknowledge" else "resolved"
            alert.history.append(action)
        return Response(202, {"status": "success", "message": "Event processed", "dedup_key": key})

    @staticmethod
    def _validate(event: dict[str, Any]) -> list[str]:
        errors = []
        routing_key = event.get("routing_key")
        if not isinstance(routing_key, str) or len(routing_key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        action = event.get("event_action")
        if action not in ACTIONS:
            errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup_key:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                return [*errors, "'payload' is missing or not an object"]
            for name in ("summary", "source", "severity"):
                value = payload.get(name)
                if not value or (isinstance(value, str) and not value.strip()):
                    errors.append(f"'payload.{name}' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid (critical, error, warning, info)")
            if len(str(payload.get("summary", ""))) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            for link in event.get("links") or []:
                if not isinstance(link, dict) or not link.get("href"):
                    errors.append("'links[].href' is required")
        return errors
