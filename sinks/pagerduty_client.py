"""The PagerDuty Events API v2 through the ``pagerduty`` package, made safe for asyncio.

The package's client is synchronous (httpx2), so calls run in a worker thread. Its own retry loop
is switched off — it retries 429 without end and sleeps in the thread — so that sevflow's one retry
policy decides, with a deadline and the circuit breaker. Every call has ``timeout`` seconds. Errors
become :class:`DeliveryError` with the status code; no message of the client is passed on, since
those can quote the routing key's last characters.
"""

import asyncio
import ssl
import threading
from pathlib import Path
from typing import Any

import pagerduty
from pydantic import SecretStr

from sinks.errors import DeliveryError, classify_status, parse_retry_after
from sinks.pagerduty_format import PagerDutyCall
from sinks.trust import trusting

__all__ = ["PagerDutySender"]

#: Statuses the package would retry by itself; each gets "no retry" (see request() in
#: pagerduty/api_client.py: a limit is checked before the attempt counter is raised).
_OWN_RETRIES = (429, 500, 502, 503, 504)


class PagerDutySender:
    def __init__(
        self,
        routing_key: SecretStr,
        base_url: str,
        *,
        timeout: float,
        ca_file: Path | None = None,
    ) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            # Read here so that a file without a certificate is refused at start by name.
            verify = trusting(ca_file, "SEVFLOW_PAGERDUTY_CA_FILE")
        self._client = pagerduty.EventsApiV2Client(
            routing_key.get_secret_value(), base_url=base_url, verify=verify
        )
        self._client.timeout = timeout  # type: ignore[assignment]  # httpx2 takes float seconds
        self._client.max_network_attempts = 0
        self._client.max_http_attempts = -1
        self._client.retry = dict.fromkeys(_OWN_RETRIES, 1)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closing = False

    async def send(self, call: PagerDutyCall) -> str:
        """Send one event; returns the dedup_key PagerDuty confirmed (202).

        The call runs on in its thread when the awaiting task is cancelled; :meth:`close` leaves
        its connection to it (see there)."""
        return await asyncio.to_thread(self._send_counted, call)

    def _send_counted(self, call: PagerDutyCall) -> str:
        with self._lock:
            if self._closing:
                raise DeliveryError(True, f"PagerDuty {call.action}: sender closed")
            self._in_flight += 1
        try:
            return self._send(call)
        finally:
            if self._leave():
                self._client.close()

    def _leave(self) -> bool:
        """Count a call out; true when it was the last one of a closed sender."""
        with self._lock:
            self._in_flight -= 1
            return self._closing and self._in_flight == 0

    def _send(self, call: PagerDutyCall) -> str:
        try:
            if call.action == "trigger":
                payload: dict[str, Any] = {
                    k: v for k, v in call.payload.items() if k != "custom_details"
                }
                key: str = self._client.trigger(
                    call.summary,
                    call.source,
                    dedup_key=call.dedup_key,
                    severity=call.severity,
                    payload=payload,
                    custom_details=call.payload.get("custom_details"),
                    links=call.links or None,
                )
            elif call.action == "acknowledge":
                key = self._client.acknowledge(call.dedup_key)
            else:
                key = self._client.resolve(call.dedup_key)
        except pagerduty.HttpError as exc:
            response = exc.response
            if response is None:
                raise DeliveryError(True, f"PagerDuty {call.action}: no response") from None
            if response.is_success:  # taken, with a body the client could not read: ask again
                raise DeliveryError(
                    True, f"PagerDuty {call.action}: HTTP {response.status_code} without a dedup_key"
                ) from None
            error = classify_status(
                response.status_code,
                f"PagerDuty {call.action}",
                parse_retry_after(response.headers.get("retry-after")),
            )
            if response.status_code == 400:
                raise DeliveryError(False, f"{error.reason}: {_errors(response)}") from None
            raise error from None
        except pagerduty.UrlError:
            raise DeliveryError(False, "PagerDuty base URL refused (https only)") from None
        except pagerduty.Error as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "error"
            raise DeliveryError(True, f"PagerDuty {call.action}: transport error ({cause})") from None
        except Exception as exc:  # noqa: BLE001 (see below)
            # An answer the client could not read (httpx2's DecodingError for a body whose
            # Content-Encoding lies is not wrapped in pagerduty.Error): the event may have
            # been taken, and its dedup_key makes a repeat harmless. Let through, it stopped
            # the sinks process at this event again at every start.
            raise DeliveryError(
                True, f"PagerDuty {call.action}: unreadable answer ({type(exc).__name__})"
            ) from None
        if not isinstance(key, str) or not key:
            raise DeliveryError(True, f"PagerDuty {call.action}: the answer has no dedup_key")
        return key

    def close(self) -> None:
        """Close the client now, or when the last call in flight returns.

        Closing a connection a thread still reads frees its descriptor while the TLS layer keeps
        reading that number: the next file or socket the process opens takes it, and the late
        read consumes that file's bytes (or a late write lands in it). Calls are bounded by the
        request timeout, so the deferred close comes within it."""
        with self._lock:
            self._closing = True
            now = self._in_flight == 0
        if now:
            self._client.close()


def _errors(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return "invalid event"
    errors = body.get("errors") if isinstance(body, dict) else None
    return "; ".join(str(e) for e in errors)[:300] if errors else "invalid event"
