"""The worker's source topics, checked at each assignment before a record of it is applied.

Two things go wrong silently when a source topic is deleted under a running worker:

* faust rebalances without it ("Ignoring missing topic") and the worker runs on, reading nothing
  from it, while the receiver answers 503 to every alert: nothing recovers until someone
  restarts the worker, which creates its topics at start (sevflow/roles/startup.py);
* once the topic exists again (created by the restarted worker, an operator, or a broker that
  creates topics on first use), its offsets start at 0. Compared with the positions stored for
  the old topic, its records looked applied already, or older than their alert's stored state,
  and were dropped, though the receiver had accepted them.

So at the start of every assignment (the first one included) :meth:`SourceTopics.assigning` starts
a check, and the alerts agent awaits it (:meth:`SourceTopics.ready`) before it applies its next
batch. (A batch gathered before the rebalance is applied before it: at revocation faust waits until
every record it delivered is acknowledged, its ``stream_wait_empty``.) The check asks Kafka for the
topics' ids (kafka_admin/topic_ids.py). The alerts topic's id is compared with the one the stored
positions came from (store/alert_source.py), which forgets them when the topic is another. Then the
worker leaves (``on_leave``: it exits with :data:`EXIT_TOPIC_GONE`, to be started again, as
``sevflow run``, Kubernetes and Compose do) when a topic stayed absent for :data:`GONE_GRACE`
seconds (started again, it creates it anew), or when a topic's id changed since the worker's
previous check: faust's consumer, which rebalanced while the topic was missing, did not see it come
back within a minute (the test of a topic created again at once), and reads it once started again.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka.errors import IncompatibleBrokerVersion, KafkaError
from sqlalchemy.ext.asyncio import AsyncEngine

from kafka_admin.topic_ids import topic_ids
from models.clock import Clock
from store.alert_source import settle_source
from streams.failures import retry_transient

__all__ = ["EXIT_TOPIC_GONE", "GONE_GRACE", "SourceTopics"]

log = logging.getLogger(__name__)

#: The worker's exit status when a source topic was deleted (EX_TEMPFAIL: start it again).
EXIT_TOPIC_GONE = 75
#: Seconds a source topic may be missing from Kafka's answers before the worker gives it up: a
#: topic being created again comes back with another id, which the check handles as such.
GONE_GRACE = 3.0
#: Longest pause between two attempts to ask Kafka.
_MAX_DELAY = 10.0

Ask = Callable[[str, Sequence[str]], Awaitable[dict[str, str]]]


class SourceTopics:
    """Checks ``sources`` (the alerts topic first) at each assignment; ``on_leave`` is called
    with the reason to leave, and does not return in the worker (``streams.app._leave``)."""

    def __init__(
        self,
        bootstrap: str,
        sources: Sequence[str],
        engine: AsyncEngine,
        clock: Clock,
        on_leave: Callable[[str], None],
        *,
        ask: Ask = topic_ids,
        pause: float = 0.5,
        grace: float = GONE_GRACE,
    ) -> None:
        self._bootstrap = bootstrap
        self._sources = list(sources)
        self._engine = engine
        self._clock = clock
        self._on_leave = on_leave
        self._ask = ask
        self._pause = pause
        self._grace = grace
        self._check: asyncio.Task[None] | None = None
        self._ids_unknown = False
        self._seen: dict[str, str] = {}  # the ids found by the previous check

    def assigning(self) -> None:
        """A new assignment begins: check again before the next batch is applied. Called
        synchronously at its start, while faust still holds the records back."""
        self._check = asyncio.ensure_future(self._checked(self._check))

    async def ready(self) -> None:
        """Wait for the last assignment's check to end."""
        if self._check is not None:
            await asyncio.shield(self._check)

    async def _checked(self, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            with contextlib.suppress(Exception):
                await before
        ids = await self._present()
        if ids is None:
            return  # gone (on_leave called), or a broker without topic ids
        alerts = self._sources[0]
        found = await retry_transient(
            "recording the alerts topic",
            lambda: settle_source(self._engine, alerts, ids[alerts], self._clock()),
        )
        if found.forgot and found.previous is not None:
            log.warning(
                "the alerts topic %s (id %s) is not the topic the stored positions came from (%s, "
                "id %s): deleted and created again, or renamed. Its records are applied from its "
                "start; the other topic's positions are forgotten",
                alerts,
                ids[alerts],
                *found.previous,
            )
        seen, self._seen = self._seen, ids
        if again := [t for t in self._sources if t in seen and seen[t] != ids[t]]:
            self._on_leave(
                f"topic {', '.join(again)} was deleted and created again while the worker read it "
                "(the worker's consumer reads it anew once started again)"
            )

    async def _present(self) -> dict[str, str] | None:
        """The sources' ids once Kafka names them all; None when one stayed missing."""
        delay, missing_since = self._pause, None
        while True:
            try:
                ids = await self._ask(self._bootstrap, self._sources)
            except IncompatibleBrokerVersion:
                if not self._ids_unknown:
                    self._ids_unknown = True
                    log.warning(
                        "Kafka does not answer Metadata v12 (an old broker): a source topic "
                        "deleted and created again is not recognised"
                    )
                return None
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "asking Kafka for the worker's topics failed (%r); again in %.1fs",
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            missing = [topic for topic in self._sources if topic not in ids]
            if not missing:
                return ids
            now = time.monotonic()
            if missing_since is None:
                missing_since = now
            elif now - missing_since >= self._grace:
                self._on_leave(
                    f"topic {', '.join(missing)} no longer exists (deleted while the worker read "
                    "it; started again, the worker creates it anew)"
                )
                return None
            await asyncio.sleep(self._pause)
