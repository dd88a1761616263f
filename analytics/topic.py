"""Read the whole ``incident-events`` topic with plain aiokafka, as a report needs it.

A report reads a snapshot of the topic: the end offsets are taken when reading starts, and reading
stops once every partition has reached them, so a busy topic cannot keep a report running forever.
No consumer group is joined and no offset is committed: a report never disturbs the sinks'
consumers. Records are decoded as the documented schema says consumers must: records of a newer
``schema_version`` and types this version does not know are skipped, and records that do not
decode are counted too; every skip is counted by reason (and shown) rather than silently dropped.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from models.events import EVENT_SCHEMA_VERSION, EventType, IncidentEvent
from models.wire import json_object, newer_version

__all__ = ["Progress", "TopicError", "TopicRead", "decode_event", "read_events"]

#: ``progress(records_read, records_total)``, called at most every ``progress_interval`` seconds
#: and once at the end. Counted by offsets: a topic written in transactions (sevflow's relay
#: writes one a batch) holds their commit markers too, control records that are read past but
#: never returned.
Progress = Callable[[int, int], None]

_KNOWN_TYPES = frozenset(t.value for t in EventType)
#: Polls (50 ms apart) for the partitions of a subscribed topic: 10 s.
_ASSIGNMENT_POLLS = 200


class TopicError(Exception):
    """The topic could not be read (no broker, no such topic, timed out): the report cannot be
    made, and the message says why."""


@dataclass
class TopicRead:
    """The decoded events and how many records were skipped, by reason."""

    events: list[IncidentEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    records: int = 0


def decode_event(raw: bytes | None) -> IncidentEvent | str:
    """The event in ``raw``, or the reason it is skipped: ``newer schema`` (a ``schema_version``
    above :data:`~models.events.EVENT_SCHEMA_VERSION`: the documented rule is to skip it),
    ``unknown type``, ``invalid record``."""
    document = json_object(raw)
    if isinstance(document, str):
        return "invalid record"
    if newer_version(document, EVENT_SCHEMA_VERSION) is not None:
        # A newer schema changed what some field means: read as this version, it would mislead.
        return "newer schema"
    if document.get("type") not in _KNOWN_TYPES:
        return "unknown type"
    try:
        return IncidentEvent.model_validate(document)
    except ValidationError:
        return "invalid record"


async def read_events(
    bootstrap: str,
    topic: str,
    *,
    progress: Progress | None = None,
    progress_interval: float = 1.0,
    read_timeout: float = 600.0,
    request_timeout: float = 10.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> TopicRead:
    """Every event of ``topic`` up to its end offsets at the start; raises :class:`TopicError`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=int(request_timeout * 1000),
    )
    try:
        await asyncio.wait_for(consumer.start(), request_timeout)
    except (KafkaError, TimeoutError, OSError) as exc:
        await consumer.stop()
        raise TopicError(f"cannot reach Kafka at {bootstrap}: {exc or type(exc).__name__}") from None
    try:
        return await asyncio.wait_for(
            _read_all(consumer, topic, progress, progress_interval, monotonic), read_timeout
        )
    except TimeoutError:
        raise TopicError(f"reading {topic} took longer than {read_timeout:.0f}s") from None
    except KafkaError as exc:
        raise TopicError(f"reading {topic} failed: {exc}") from None
    finally:
        await consumer.stop()


async def _read_all(
    consumer: AIOKafkaConsumer,
    topic: str,
    progress: Progress | None,
    progress_interval: float,
    monotonic: Callable[[], float],
) -> TopicRead:
    if topic not in await consumer.topics():
        raise TopicError(f"topic {topic} does not exist")
    # Without a group, subscribing assigns every partition of the topic (and fetches its metadata).
    consumer.subscribe([topic])
    for _ in range(_ASSIGNMENT_POLLS):
        if consumer.assignment():
            break
        await asyncio.sleep(0.05)
    else:
        raise TopicError(f"no partitions of {topic} were assigned")
    tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    start = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)
    total = sum(end[tp] - start[tp] for tp in tps)
    remaining = {tp for tp in tps if end[tp] > start[tp]}
    await consumer.seek_to_beginning(*tps)
    result = TopicRead()
    reported = monotonic()
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, messages in batch.items():
            for message in messages:
                if message.offset >= end[tp]:
                    continue
                result.records += 1
                decoded = decode_event(message.value)
                if isinstance(decoded, str):
                    result.skipped[decoded] += 1
                else:
                    result.events.append(decoded)
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
        if progress is not None and monotonic() - reported >= progress_interval:
            reported = monotonic()
            done = [min(await consumer.position(tp), end[tp]) - start[tp] for tp in tps]
            progress(sum(done), total)
    if progress is not None:
        progress(total, total)  # every partition read to its end
    return result
