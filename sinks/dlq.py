"""The dead-letter topic: what a sink could not deliver, with why, and how to send it again.

Record (key: incident id, or empty for poison; value: JSON of :class:`DeadLetter`)::

    {"sink": "slack", "reason": "Slack conversations.create: restricted_action", "retryable": false,
     "failed_at": "…", "source": {"topic": "incident-events", "partition": 3, "offset": 1207},
     "incident_id": "inc_…", "event_id": "…", "event": {…IncidentEvent…} | null, "raw": null | "…"}

:func:`dlq_list` reads the topic; :func:`dlq_replay` publishes the chosen events back onto the
events topic with a ``sevflow-replay-for: <sink>`` header, so only that sink handles them again;
the delivery log makes a replay of something already delivered a no-op.

A replayed event is followed by every later event of its incident from the incident store, in
order, for the same sink. What came after a failed event was handled by the sink without it (an
acknowledgement or resolution of a page never sent is skipped as "not paged"); replaying the
opening alone would leave the page open for good. The later events the sink did deliver are
no-ops, by the delivery log.
"""

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from kafka_admin.reading import parsed, read_topics
from models.events import IncidentEvent, IncidentSnapshot
from models.record_limits import DEAD_LETTER_MAX_BYTES
from models.settings import Settings
from sinks.records import REPLAY_HEADER
from store.db import async_engine
from store.incidents import IncidentStore

__all__ = [
    "DEAD_LETTER_MAX_BYTES",
    "DeadLetter",
    "DeadLetterWriter",
    "DeadLetters",
    "MemoryDeadLetters",
    "Replayed",
    "SourcePosition",
    "StoreUnreadable",
    "carried",
    "dlq_list",
    "dlq_replay",
    "with_flags_of",
]


class SourcePosition(BaseModel):
    topic: str
    partition: int
    offset: int


class DeadLetter(BaseModel):
    sink: str
    reason: str
    retryable: bool
    failed_at: datetime
    source: SourcePosition
    incident_id: str | None = None
    event_id: str | None = None
    event: IncidentEvent | None = None
    raw: str | None = Field(default=None, description="The undecodable record (poison), cut to 4 KiB.")
    dlq_offset: int | None = Field(
        default=None, description="Position on the dead-letter topic (read side)."
    )

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude={"dlq_offset"}).encode()


class DeadLetters(Protocol):
    """Where a worker puts what it could not deliver."""

    async def write(self, letter: DeadLetter) -> None: ...


class MemoryDeadLetters:
    """Dead letters kept in memory: for running a worker without Kafka (tests, benchmarks)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def write(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


class DeadLetterWriter:
    """Writes dead letters and waits for Kafka's acknowledgement (a lost dead letter is a lost page)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def write(self, letter: DeadLetter) -> None:
        key = (letter.incident_id or "").encode()
        await self._producer.send_and_wait(self._topic, key=key, value=carried(letter))


def carried(letter: DeadLetter) -> bytes:
    """The letter's bytes; without its event when that would make it too large to write (an
    event of up to a megabyte, written to incident-events by another producer): the write was
    refused at every attempt, the sinks role stopped, and met the same event at its next start."""
    value = letter.to_bytes()
    if len(value) <= DEAD_LETTER_MAX_BYTES:
        return value
    where = f"{letter.source.topic}[{letter.source.partition}]@{letter.source.offset}"
    note = f"the event is not kept here ({len(value)} bytes with it): it is at {where}"
    return letter.model_copy(update={"event": None, "reason": f"{letter.reason} ({note})"}).to_bytes()


async def _read_all(settings: Settings, wait_seconds: float) -> list[DeadLetter]:
    read = await read_topics(settings.kafka_bootstrap, [settings.sinks_dlq_topic], wait_seconds)
    return [
        letter.model_copy(update={"dlq_offset": r.offset})
        for r, letter in parsed(read, DeadLetter, "a dead letter")
    ]


def _matches(letter: DeadLetter, sink: str | None, event_ids: Collection[str] | None) -> bool:
    return (sink is None or letter.sink == sink) and (
        event_ids is None or (letter.event_id is not None and letter.event_id in event_ids)
    )


async def dlq_list_async(
    settings: Settings, *, sink: str | None = None, limit: int = 100, wait_seconds: float = 30.0
) -> list[DeadLetter]:
    letters = [x for x in await _read_all(settings, wait_seconds) if _matches(x, sink, None)]
    return letters[-limit:]


def dlq_list(
    settings: Settings, *, sink: str | None = None, limit: int = 100, timeout: float = 30.0
) -> list[DeadLetter]:
    """The newest ``limit`` dead letters (optionally of one sink), oldest first."""
    return asyncio.run(dlq_list_async(settings, sink=sink, limit=limit, wait_seconds=timeout))


class StoreUnreadable(Exception):
    """The incident store could not be read for the later events of a replay; nothing was sent."""


@dataclass(frozen=True)
class Replayed:
    letters: int
    #: Later events of the letters' incidents, sent after them (see the module's docstring).
    later: int


async def _later_events(
    settings: Settings, letters: list[DeadLetter]
) -> list[tuple[str, IncidentEvent]]:
    """(sink, event) to publish: per sink and incident, its letters' events and every later event
    of that incident in the store, by sequence, each once; incidents in the order of their first
    letter."""
    chosen: dict[tuple[str, str], dict[str, IncidentEvent]] = {}
    for letter in letters:
        assert letter.event is not None
        key = (letter.sink, letter.event.incident_id)
        chosen.setdefault(key, {})[str(letter.event.event_id)] = letter.event
    engine = async_engine(settings.sqlalchemy_url())
    try:
        store = IncidentStore(engine)
        timelines = {i: await store.timeline(i) for i in sorted({i for _, i in chosen})}
    except (SQLAlchemyError, OSError) as exc:
        # The class only: a driver's message can quote the URL, password included.
        raise StoreUnreadable(f"the incident store is not readable ({type(exc).__name__})") from None
    finally:
        await engine.dispose()
    out: list[tuple[str, IncidentEvent]] = []
    for (sink, incident_id), events in chosen.items():
        first = min(e.sequence for e in events.values())
        for event in timelines[incident_id]:
            if event.sequence > first:
                events.setdefault(str(event.event_id), event)
        latest = timelines[incident_id][-1].incident if timelines[incident_id] else None
        ordered = sorted(events.values(), key=lambda e: e.sequence)
        out += [(sink, with_flags_of(e, latest)) for e in ordered]
    return out


#: What makes an incident private; each only ever turns on.
_PRIVATE_FLAGS = ("security", "data_breach", "held_from_status_page")


def with_flags_of(event: IncidentEvent, latest: IncidentSnapshot | None) -> IncidentEvent:
    """``event`` with the security flags its incident has now (``latest``): a dead letter holds
    the incident as it was, and replayed as it was, an opening of an incident that has turned
    security since went on the public page in the alert's words, and opened a public channel."""
    flags = {f: True for f in _PRIVATE_FLAGS if latest is not None and getattr(latest, f)}
    if all(getattr(event.incident, f) for f in flags):
        return event
    return event.model_copy(update={"incident": event.incident.model_copy(update=flags)})


async def dlq_replay_async(
    settings: Settings,
    *,
    sink: str | None = None,
    event_ids: Collection[str] | None = None,
    wait_seconds: float = 30.0,
) -> Replayed:
    letters = [
        x
        for x in await _read_all(settings, wait_seconds)
        if _matches(x, sink, event_ids) and x.event is not None
    ]
    if not letters:
        return Replayed(0, 0)
    sends = await _later_events(settings, letters)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        async with asyncio.timeout(wait_seconds):
            for to, event in sends:
                await producer.send_and_wait(
                    settings.events_topic,
                    key=event.incident_id.encode(),
                    value=event.to_bytes(),
                    headers=[(REPLAY_HEADER, to.encode())],
                )
    finally:
        await producer.stop()
    distinct = {(x.sink, str(x.event_id)) for x in letters}
    return Replayed(len(letters), len(sends) - len(distinct))


def dlq_replay(
    settings: Settings,
    *,
    sink: str | None = None,
    event_ids: Collection[str] | None = None,
    timeout: float = 30.0,
) -> Replayed:
    """Send dead-lettered events (of one sink, or with these event ids) to their sink again, each
    followed by its incident's later events; returns how many of each were sent. Poison records
    (no event) are listed but never replayed."""
    return asyncio.run(dlq_replay_async(settings, sink=sink, event_ids=event_ids, wait_seconds=timeout))
