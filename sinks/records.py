"""Decoding ``incident-events`` records: an event, a record to skip, or poison with a reason.

Unknown event types are skipped (producers may add types; consumers must ignore them). A record
that is not a valid event is poison: it is dead-lettered with the reason, never retried. So is an
event of a newer ``schema_version``: the version changes only when a consumer must behave
differently (docs/incident-events.md), so read as this version it would deliver the wrong thing;
its dead letter names the incident and says to upgrade the sinks.
"""

from dataclasses import dataclass
from functools import lru_cache

from pydantic import ValidationError

from models.events import EVENT_SCHEMA_VERSION, EventType, IncidentEvent
from models.wire import json_object, newer_version, problems

__all__ = ["REPLAY_HEADER", "SHARED_DECODES", "Decoded", "decode", "decode_shared"]

#: Header of a record replayed from the dead-letter topic: the one sink that should handle it.
REPLAY_HEADER = "sevflow-replay-for"
_TYPES = {t.value for t in EventType}


@dataclass(frozen=True)
class Decoded:
    event: IncidentEvent | None = None
    poison: str | None = None
    replay_for: str | None = None
    #: Of a poison record that names them (a newer schema's event), for its dead letter.
    incident_id: str | None = None
    event_id: str | None = None
    #: Poison that a newer sevflow would deliver (a newer schema), not a record no version reads.
    newer: bool = False


def decode(
    value: bytes | None, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] = ()
) -> Decoded:
    # (Another producer's header may hold no value, or bytes that are not UTF-8: it then names
    # no sink, and every sink leaves the record to the one it does not name.)
    replay_for = next(
        (v.decode(errors="replace") if v is not None else "" for k, v in headers if k == REPLAY_HEADER),
        None,
    )
    raw = json_object(value)
    if isinstance(raw, str):
        return Decoded(poison=f"invalid event: {raw}")
    if raw.get("type") not in _TYPES:
        return Decoded()  # a type this version does not know: skip
    version = newer_version(raw, EVENT_SCHEMA_VERSION)
    if version is not None:
        return Decoded(
            poison=f"newer event schema_version {version} (this sevflow reads "
            f"{EVENT_SCHEMA_VERSION}): upgrade sevflow sinks",
            replay_for=replay_for,
            incident_id=_text(raw.get("incident_id")),
            event_id=_text(raw.get("event_id")),
            newer=True,
        )
    try:
        return Decoded(event=IncidentEvent.model_validate(raw), replay_for=replay_for)
    except ValidationError as exc:
        return Decoded(poison=f"invalid event: {problems(exc)}"[:500])


def _text(value: object) -> str | None:
    return value[:64] if isinstance(value, str) else None


#: How many decoded records :func:`decode_shared` keeps: the sinks of one process poll the same
#: records within milliseconds of each other at a steady rate, so a few hundred are enough; in a
#: backlog the one that lags decodes again, as it did before.
SHARED_DECODES = 512

_kept = lru_cache(maxsize=SHARED_DECODES)(decode)


def decode_shared(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> Decoded:
    """:func:`decode`, once per record for all the sinks of a process.

    Every sink reads ``incident-events`` with a consumer group of its own, so each gets each
    record as bytes of its own; decoding (JSON, then the event's validation) was a tenth of the
    sinks' CPU with two sinks, half of it the same work done again. The result is a pure function
    of the record's value and headers, so it is kept by them (bytes compare by content and keep
    their hash): the second sink gets the first one's :class:`Decoded`. The event in it is
    shared: it is frozen, and no sink changes what it holds."""
    try:
        return _kept(value, headers)
    except TypeError:  # a header that is not a hashable pair: decoded, not kept
        return decode(value, headers)
