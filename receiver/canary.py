"""The end-to-end canary's sender: a round every interval, posted to the receiver's own webhook.

It runs inside the receiver process (``sevflow receiver``, hence ``sevflow run``), which knows
its address and its webhook credentials. Each round::

    post a firing SevflowCanary alert (a fresh round label: a new alert, a new incident)
    wait SEVFLOW_CANARY_RESOLVE_AFTER_SECONDS
    post its resolution (and those of earlier rounds whose resolution was not accepted)
    wait for the next round

It posts over HTTP with the webhook's credentials, so the receiver's authentication, its
validation, the Kafka produce and everything after them are exercised exactly as for
Alertmanager's requests; only the network between Alertmanager and the receiver is not. A post
that fails (connection refused, 401, 503…) is logged and nothing else: a canary that does not
arrive is what ``SevflowCanaryStale`` (deploy/prometheus) pages on, from Alertmanager directly.

Time comes from the injected clock (``now`` and ``sleep``), so tests run rounds without waiting.
"""

import base64
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from models.canary import canary_payload
from receiver.app import WEBHOOK_PATH

__all__ = ["Canary", "CanaryClock", "canary_authorization", "loopback_url"]

log = logging.getLogger(__name__)

#: Seconds one canary post may take (the receiver answers within its Kafka deadlines).
POST_TIMEOUT = 15.0
#: Rounds whose resolution is kept to be retried; older ones are given up (the receiver was
#: unreachable for that long: their incidents stay open until resolved by hand).
PENDING_MAX = 100


class CanaryClock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


def canary_authorization(tokens: Sequence[SecretStr], basic: Sequence[SecretStr]) -> str | None:
    """The Authorization header the canary sends: the first webhook token, else the first basic
    credentials, else none (an unauthenticated receiver)."""
    if tokens:
        return f"Bearer {tokens[0].get_secret_value()}"
    if basic:
        encoded = base64.b64encode(basic[0].get_secret_value().encode()).decode()
        return f"Basic {encoded}"
    return None


def loopback_url(host: str, port: int) -> str:
    """The webhook's URL on this machine: a wildcard address is reached on the loopback."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - the address the receiver listens on, not bound here
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{WEBHOOK_PATH}"


def _round_id(now: datetime) -> str:
    """Unique per round and per receiver replica (each replica runs its own canary)."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


class Canary:
    """Posts canary rounds to ``url`` through ``client`` (its transport is the tests' seam)."""

    def __init__(
        self,
        *,
        url: str,
        authorization: str | None,
        interval: float,
        resolve_after: float,
        clock: CanaryClock,
        client: httpx.AsyncClient,
        round_id: Callable[[datetime], str] = _round_id,
    ) -> None:
        if interval <= 0:
            raise ValueError("the canary's interval must be positive")
        self._url = url
        self._headers = {"Content-Type": "application/json"}
        if authorization is not None:
            self._headers["Authorization"] = authorization
        self._interval = interval
        self._resolve_after = min(resolve_after, interval / 2)
        self._clock = clock
        self._client = client
        self._round_id = round_id
        #: Rounds fired whose resolution was not accepted yet: round id → startsAt.
        self.unresolved: dict[str, datetime] = {}

    async def run(self) -> None:
        """Rounds until cancelled."""
        log.info("canary: a round every %.0fs to %s", self._interval, self._url)
        while True:
            await self.round()
            await self._clock.sleep(self._interval - self._resolve_after)

    async def round(self) -> None:
        """One round: fire, wait, resolve (this round's and any still unresolved)."""
        started = self._clock.now()
        round_id = self._round_id(started)
        if await self._post(canary_payload(round_id, "firing", started), round_id):
            self.unresolved[round_id] = started
            while len(self.unresolved) > PENDING_MAX:
                del self.unresolved[next(iter(self.unresolved))]
        await self._clock.sleep(self._resolve_after)
        for pending, starts_at in list(self.unresolved.items()):
            ended = self._clock.now()
            if await self._post(canary_payload(pending, "resolved", starts_at, ended), pending):
                del self.unresolved[pending]

    async def _post(self, payload: dict[str, Any], round_id: str) -> bool:
        status = payload["status"]
        try:
            response = await self._client.post(
                self._url, json=payload, headers=self._headers, timeout=POST_TIMEOUT
            )
        except httpx.HTTPError as exc:
            log.warning("canary %s %s not posted: %s", round_id, status, type(exc).__name__)
            return False
        if response.status_code != 200:
            # The body names the reason (never a credential); the header is not logged.
            log.warning(
                "canary %s %s refused: %d %s",
                round_id,
                status,
                response.status_code,
                response.text[:200],
            )
            return False
        log.debug("canary %s %s accepted", round_id, status)
        return True
