"""Which incarnation of the events topic a sink's positions belong to.

Offsets restart at 0 in a topic deleted and created again. Two things then skip its first
records, events the worker published, so pages never sent:

* a sink consumer reads on at its old position: aiokafka fetches by name, and a topic created
  again at once may never be missing from the consumer's metadata, so nothing tells it the
  partition is another one; the records below that position are passed over;
* a commit made once the topic is back (the drain at the revocation its deletion causes, or the
  commits after it) stores the old position for the new topic, and the sinks, started again,
  begin there.

Kafka names each incarnation of a topic with a UUID (kafka_admin/topic_ids.py). A sink's commits
carry it as their metadata, and :class:`Incarnation`

* at each assignment reads the group's committed offsets: a partition whose commit names another
  id is read from its beginning;
* while the sink runs, asks Kafka for the id every ``interval`` seconds: once it changed, the
  worker (sinks/worker.py) lets its lanes finish without committing, and reads each assigned
  partition of the topic from its beginning.

Records read again that were delivered already are answered by the delivery log, with no call.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import IncompatibleBrokerVersion, KafkaError

from kafka_admin.topic_ids import ask_topic_ids

__all__ = ["WATCH_INTERVAL", "Ask", "Incarnation"]

log = logging.getLogger(__name__)

#: Seconds between two questions for the topic's id while a sink runs: how long, at most,
#: records skipped in a topic created again wait before they are read.
WATCH_INTERVAL = 2.0

_FAILURES = (KafkaError, OSError, TimeoutError)

#: Asks for the ids of the named topics (kafka_admin.topic_ids.ask_topic_ids's answer).
Ask = Callable[[Sequence[str]], Awaitable[dict[str, str]]]


class Incarnation:
    """The id of ``topic`` a sink's consumer group (``group``) reads, as last known."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        *,
        interval: float = WATCH_INTERVAL,
        request_timeout_ms: int = 10_000,
        ask: Ask | None = None,
    ) -> None:
        """``ask``: how the topic's id is asked for; Kafka, on a kept connection, by default."""
        self.topic = topic
        self._ask = ask or self._ask_kafka
        self._bootstrap = bootstrap
        self._group = group
        self._interval = interval
        self._timeout_ms = request_timeout_ms
        #: The id the positions in hand belong to; None until Kafka named it.
        self.known: str | None = None
        self._changed: str | None = None
        self._epoch = 0  # bumped by each assignment: an answer asked before it is stale
        self._unsupported = False
        self._failing = False
        self._client: AIOKafkaClient | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._rewinds = 0  # partitions sent back to offset 0 by assignments, so far
        self._rewound_at: dict[TopicPartition, int] = {}  # ... and at which count each

    async def current(self) -> str | None:
        """The topic's id now; None when it is missing, or Kafka did not answer (logged)."""
        if self._unsupported:
            return None
        try:
            ids = await self._ask([self.topic])
        except IncompatibleBrokerVersion:
            self._unsupported = True
            log.warning(
                "Kafka does not answer Metadata v12 (an old broker): the sinks cannot tell topic "
                "%s deleted and created again from the topic they read",
                self.topic,
            )
            await self._close_client()
            return None
        except _FAILURES as exc:
            # Once per outage: the consumer itself says Kafka is unreachable meanwhile.
            level = logging.DEBUG if self._failing else logging.WARNING
            self._failing = True
            log.log(
                level, "asking Kafka for topic %s's id failed (%r); asked again later", self.topic, exc
            )
            await self._close_client()
            return None
        self._failing = False
        return ids.get(self.topic)

    async def _ask_kafka(self, names: Sequence[str]) -> dict[str, str]:
        if self._client is None:
            client = AIOKafkaClient(
                bootstrap_servers=self._bootstrap, request_timeout_ms=self._timeout_ms
            )
            self._client = client
            await client.bootstrap()
        return await ask_topic_ids(self._client, names)

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: Collection[TopicPartition]) -> None:
        """Learn the topic's id, and read from its beginning each partition of ``partitions``
        whose committed offset names another. Called by the consumer's rebalance listener
        (:class:`~sinks.kafka.HandOver`) while it holds the worker's batch lock: aiokafka fetches
        the new partitions meanwhile, but nothing polled is dispatched or committed until this
        ends (a commit made meanwhile would name the topic as it is, over the old positions)."""
        self._epoch += 1
        self._changed = None
        current = await self.current()
        if current is None:
            return
        self.known = current
        mine = [tp for tp in partitions if tp.topic == self.topic]
        if not mine:
            return
        try:
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self._bootstrap, request_timeout_ms=self._timeout_ms
                )
                self._admin = admin
                await admin.start()
            committed = await self._admin.list_consumer_group_offsets(self._group, partitions=mine)
        except _FAILURES as exc:
            log.warning(
                "%s: reading its committed offsets of %s failed (%r): they are taken as made in "
                "the topic as it is",
                self._group,
                self.topic,
                exc,
            )
            await self._close_admin()
            return
        stale = sorted(
            tp
            for tp, made in committed.items()
            if made.offset >= 0 and made.metadata and made.metadata != current
        )
        if stale:
            log.warning(
                "%s: the offsets committed for %s were made in another topic of that name (id %s, "
                "now %s: deleted and created again); partitions %s are read from offset 0",
                self._group,
                self.topic,
                committed[stale[0]].metadata,
                current,
                ", ".join(str(tp.partition) for tp in stale),
            )
            for tp in stale:
                consumer.seek(tp, 0)  # (seek_to_beginning awaits the fetcher: not in a listener)
                self._rewinds += 1
                self._rewound_at[tp] = self._rewinds

    def mark(self) -> int:
        """Taken before a poll, for :meth:`stale_polls` after it."""
        return self._rewinds

    def stale_polls(
        self, consumer: AIOKafkaConsumer, mark: int, partitions: Collection[TopicPartition]
    ) -> set[TopicPartition]:
        """Of ``partitions`` (assigned, polled since :meth:`mark` gave ``mark``), those an
        assignment sent back to offset 0 meanwhile. What the poll returned of them may come from
        the old positions (aiokafka fetches while the listener runs): they are sent back to
        offset 0 again, and their records are to be dropped, to be read again."""
        if mark == self._rewinds:
            return set()
        stale = {tp for tp in partitions if self._rewound_at.get(tp, 0) > mark}
        for tp in stale:
            consumer.seek(tp, 0)
        return stale

    async def watch(self) -> None:
        """Ask for the topic's id every ``interval`` seconds until cancelled; a change is kept
        for :meth:`take_change`."""
        while True:
            await asyncio.sleep(self._interval)
            epoch = self._epoch
            current = await self.current()
            if current is None or epoch != self._epoch:
                continue
            if self.known is None:
                self.known = current
            elif current != self.known:
                self._changed = current

    def changed(self) -> bool:
        """Whether the topic changed since its id was last known (see :meth:`read_anew`)."""
        return self._changed is not None and self.known is not None

    def read_anew(self, consumer: AIOKafkaConsumer, sink: str) -> None:
        """After :meth:`changed`: send each assigned partition of the topic back to offset 0 and
        take the new id as known. The worker first lets its lanes finish without committing:
        what it polled since the change came from the old positions."""
        previous, self.known, self._changed = self.known, self._changed, None
        log.warning(
            "%s: topic %s was deleted and created again (id %s, now %s); its partitions are read "
            "from offset 0",
            sink,
            self.topic,
            previous,
            self.known,
        )
        for tp in consumer.assignment():
            if tp.topic == self.topic:
                consumer.seek(tp, 0)

    async def close(self) -> None:
        await self._close_client()
        await self._close_admin()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_FAILURES):
                await client.close()

    async def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(*_FAILURES):
                await admin.close()
