"""An analytics consumer of sevflow's ``incident-events`` topic: a starting point for your team.

It needs only ``aiokafka`` and the standard library — no sevflow code — because the topic's
records are self-describing JSON documented in ``docs/incident-events.md`` (JSON Schema:
``docs/incident-events.schema.json``). It follows the consumer rules that document sets:

- records are keyed by incident id, so one incident's events arrive in ``sequence`` order;
- delivery is at-least-once: deduplicate on ``event_id`` (here: the last 100 000 ids seen);
- ignore event types you do not know (new ones may be added);
- ``schema_version`` changes only when a consumer must behave differently: skip newer versions.

It keeps, per incident, when it opened, its latest severity, its first acknowledgement and its
current resolution, and prints the time to acknowledge and to resolve per SEV (count, mean,
median). Time to acknowledge is measured from the start of the episode the acknowledgement
answered: the opening, or the latest ``reopened`` before it (as ``sevflow report`` does).
Offsets are committed after the records are applied (at-least-once, which the deduplication
absorbs); keep your own state in a store if it must survive restarts.

Run::

    pip install aiokafka
    python examples/analytics_consumer.py --bootstrap 127.0.0.1:19092 --topic incident-events \\
        --group my-team-analytics --idle-seconds 10
"""

import argparse
import asyncio
import json
import statistics
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer

SCHEMA_VERSION = 1
KNOWN_TYPES = {
    "opened",
    "alert_added",
    "alert_resolved",
    "alert_refired",
    "severity_changed",
    "acknowledged",
    "resolved",
    "reopened",
    "escalated",
    "sla_breached",
}


def parse_time(value: object) -> datetime | None:
    """RFC 3339 as sevflow writes it (``2026-11-27T12:00:00Z``); None for null. Raises
    ValueError for anything else (not a text, not a time, a time without its zone)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a time is an RFC 3339 text")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 time has a zone")
    return moment


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def readable(record: object) -> dict[str, Any] | None:
    """``record`` when it is an event this consumer counts: of this schema version or older, of a
    known type, with the fields used here of their documented types, and not sevflow's own
    canary (which pages nobody, and ``sevflow report`` leaves out). None for anything else: a
    consumer skips what it cannot read instead of stopping at it for ever."""
    if not isinstance(record, dict):
        return None
    version = record.get("schema_version", 1)
    kind = record.get("type")
    if not _integer(version) or version > SCHEMA_VERSION or not isinstance(kind, str):
        return None
    snapshot = record.get("incident")
    if (
        kind not in KNOWN_TYPES
        or not isinstance(record.get("event_id"), str)
        or not isinstance(record.get("incident_id"), str)
        or not _integer(record.get("sequence"))
        or not isinstance(snapshot, dict)
        or not isinstance(snapshot.get("severity"), str)
        or not isinstance(snapshot.get("state"), str)
        or snapshot.get("canary") is True
    ):
        return None
    try:
        times = [parse_time(snapshot.get(name)) for name in ("acknowledged_at", "resolved_at")]
        times += [parse_time(snapshot.get("opened_at")), parse_time(record.get("occurred_at"))]
    except ValueError:
        return None
    return record if times[2] is not None and times[3] is not None else None


@dataclass
class IncidentView:
    severity: str
    state: str
    opened_at: datetime
    last_sequence: int
    first_acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    #: The opening, or the latest reopening seen: what an acknowledgement answers.
    episode_started_at: datetime | None = None
    #: The first acknowledgement's wait, from the start of its episode.
    time_to_acknowledge: timedelta | None = None


class ResponseTracker:
    """Folds incident-events records into per-incident response times."""

    def __init__(self, remember: int = 100_000) -> None:
        self.incidents: dict[str, IncidentView] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self.ignored = 0

    def apply(self, decoded: object) -> bool:
        """Apply one decoded record; False when it is skipped (a repeat, or what :func:`readable`
        refuses: an unknown type, a newer schema, a canary, a record that is no event)."""
        record = readable(decoded)
        if record is None:
            self.ignored += 1
            return False
        event_id = record["event_id"]
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        snapshot = record["incident"]
        view = self.incidents.get(record["incident_id"])
        if view is None:
            view = IncidentView(
                severity=snapshot["severity"],
                state=snapshot["state"],
                opened_at=parse_time(snapshot["opened_at"]),  # type: ignore[arg-type]
                last_sequence=0,
            )
            self.incidents[record["incident_id"]] = view
        if record["type"] == "reopened":
            view.episode_started_at = parse_time(record["occurred_at"])
        if record["type"] == "acknowledged":
            acknowledged = parse_time(snapshot.get("acknowledged_at") or record["occurred_at"])
            if acknowledged is not None and (
                view.first_acknowledged_at is None or acknowledged < view.first_acknowledged_at
            ):
                view.first_acknowledged_at = acknowledged
                # (never below zero: a clock behind the opening's, as sevflow report counts it)
                waited = acknowledged - (view.episode_started_at or view.opened_at)
                view.time_to_acknowledge = max(waited, timedelta(0))
        if record["sequence"] > view.last_sequence:  # the latest snapshot wins
            view.last_sequence = record["sequence"]
            view.severity = snapshot["severity"]
            view.state = snapshot["state"]
            view.resolved_at = (
                parse_time(snapshot.get("resolved_at")) if snapshot["state"] == "resolved" else None
            )
        return True

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per severity: incidents, and the count, mean and median (seconds) of TTA and TTR."""
        out: dict[str, dict[str, float | int | None]] = {}
        for severity in sorted({v.severity for v in self.incidents.values()}):
            views = [v for v in self.incidents.values() if v.severity == severity]
            tta = [
                v.time_to_acknowledge.total_seconds() for v in views if v.time_to_acknowledge is not None
            ]
            ttr = [
                max(v.resolved_at - v.opened_at, timedelta(0)).total_seconds()
                for v in views
                if v.resolved_at is not None
            ]
            out[severity] = {
                "incidents": len(views),
                "acknowledged": len(tta),
                "tta_mean_s": statistics.fmean(tta) if tta else None,
                "tta_median_s": statistics.median(tta) if tta else None,
                "resolved": len(ttr),
                "ttr_mean_s": statistics.fmean(ttr) if ttr else None,
                "ttr_median_s": statistics.median(ttr) if ttr else None,
            }
        return out


async def consume(
    bootstrap: str,
    topic: str,
    group: str | None,
    tracker: ResponseTracker,
    *,
    idle_seconds: float | None = None,
) -> None:
    """Read ``topic`` from the start (for a new group) into ``tracker``; return after
    ``idle_seconds`` without records (None: run until cancelled)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        idle = 0.0
        while idle_seconds is None or idle < idle_seconds:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            messages = [m for ms in batch.values() for m in ms]
            idle = 0.0 if messages else idle + 0.5
            for message in messages:
                try:
                    record = json.loads(message.value)
                except (TypeError, ValueError, RecursionError):
                    tracker.ignored += 1  # not JSON (or nested past the parser): skip it
                    continue
                tracker.apply(record)
            if messages and group is not None:
                await consumer.commit()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", default="incident-events")
    parser.add_argument("--group", default=None, help="consumer group (commit offsets)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="stop after this idle time")
    args = parser.parse_args()
    tracker = ResponseTracker()
    asyncio.run(consume(args.bootstrap, args.topic, args.group, tracker, idle_seconds=args.idle_seconds))
    print(json.dumps(tracker.summary(), indent=2))


if __name__ == "__main__":
    main()
