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
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from analytics.incident_times import RESPONSE_TYPES
from models.events import EVENT_SCHEMA_VERSION, EventType, IncidentEvent
from models.wire import json_object, newer_version

__all__ = [
    "Progress",
    "Skipped",
    "TopicError",
    "TopicRead",
    "decode_event",
    "read_events",
    "read_record",
]

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
    """The decoded events and how many records were skipped, by reason; ``passed_over``: the
    ``(incident_id, sequence)`` of each event skipped for its type or schema version, an event
    of its incident all the same (:func:`analytics.incident_times.rebuild_times`)."""

    events: list[IncidentEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    records: int = 0
    passed_over: set[tuple[str, int]] = field(default_factory=set)
    #: Incidents with a response event skipped (a newer schema's): their times cannot be rebuilt.
    unread: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Skipped:
    """Why a record is not read as an event; ``position``: its ``(incident_id, sequence)`` when it
    is an event skipped only for its type or schema version (both readable)."""

    reason: str
    position: tuple[str, int] | None = None
    #: An event the incident's times depend on (a response, or a type not readable): its
    #: incident is left out rather than rebuilt without it.
    response: bool = False


_RESPONSE_TYPE_NAMES = frozenset(t.value for t in RESPONSE_TYPES)


def read_record(raw: bytes | None) -> IncidentEvent | Skipped:
    """The event in ``raw``, or why it is skipped: ``newer schema`` (a ``schema_version`` above
    :data:`~models.events.EVENT_SCHEMA_VERSION`: the documented rule is to skip it), ``unknown
    type``, ``invalid record`` (not JSON, a version or type that is not an integer or a text)."""
    document = json_object(raw)
    if isinstance(document, str):
        return Skipped("invalid record")
    version = document.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return Skipped("invalid record")  # "2" or 2.0 is no version: read as 1, it would mislead
    if newer_version(document, EVENT_SCHEMA_VERSION) is not None:
        # A newer schema changed what some field means: read as this version, it would mislead.
        # It holds its place unless it is a response (an acknowledgement, a resolution, a
        # reopening): without it the incident's times are wrong, so its incident is left out
        # and counted ("never acknowledged, breached" was reported instead).
        kind = document.get("type")
        responds = not isinstance(kind, str) or kind in _RESPONSE_TYPE_NAMES
        return Skipped("newer schema", _position(document), response=responds)
    kind = document.get("type")
    if not isinstance(kind, str):
        return Skipped("invalid record")
    if kind not in _KNOWN_TYPES:
        return Skipped("unknown type", _position(document))
    try:
        return IncidentEvent.model_validate(document)
    except ValidationError:
        return Skipped("invalid record")


def decode_event(raw: bytes | None) -> IncidentEvent | str:
    """The event in ``raw``, or the reason it is skipped (:func:`read_record`)."""
    decoded = read_record(raw)
    return decoded.reason if isinstance(decoded, Skipped) else decoded


def _position(document: dict[str, Any]) -> tuple[str, int] | None:
    incident_id, sequence = document.get("incident_id"), document.get("sequence")
    if not isinstance(incident_id, str) or isinstance(sequence, bool) or not isinstance(sequence, int):
        return None
    return incident_id, sequence


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
                decoded = read_record(message.value)
                if isinstance(decoded, Skipped):
                    result.skipped[decoded.reason] += 1
                    if decoded.position is not None and decoded.response:
                        result.unread.add(decoded.position[0])
                    elif decoded.position is not None:
                        result.passed_over.add(decoded.position)
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
