"""A hypothesis state machine that drives the real pipeline (models + store + streams' steps)
against the simulated world of :mod:`tests.model.world` and a small reference model.

Operations: Alertmanager notifications (firing, resolved, re-sends, the second route of an alert
sent in two groups, an HA peer's late copy of a payload), through receiver replicas whose clocks
are skewed by ±5 minutes; the worker taking records from the topic's partitions in batches,
committing, crashing and replaying from the last commit; the quiet-period and maintenance timers
ticking; maintenance windows opening; operators acknowledging and resolving from every source,
their commands applied late.

The reference model is written here, apart from the code under test: an alert's state is the
state of its last record in partition order (offsets), except a resolution of an earlier episode
(:data:`STALE_RESOLUTION`); the record-time watermark is the oldest of each partition's newest
applied receive time, a partition with nothing left to apply standing at the true time.

Invariants (checked after every step):
* the store's status of every alert is the reference model's;
* every firing alert counts in exactly one open incident, except alerts held by a maintenance
  window not yet released, and alerts still firing in an incident resolved by hand;
* an incident resolves by itself only when all its alerts resolved and the quiet period has
  passed in record time (the watermark);
* an alert that resolved in an incident that can still take it back (open, or resolved within the
  reopen window) fires again in it: no second incident is opened for it;
* records applied again after a crash change nothing;
* per incident, event sequence numbers run 1..n without gaps; no event id twice;
* a command applies only to the episode it was given for.
"""

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import Actor, EventType, IncidentEvent, IncidentState
from models.incident import Command, Incident, LifecyclePolicy
from models.maintenance import MaintenanceWindow
from store.db import async_engine
from store.incidents import IncidentStore
from store.maintenance import MaintenanceStore
from store.schema import alerts, incident_events, maintenance_windows
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.model.system import System
from tests.model.world import (
    ALERTS,
    PARTITIONS,
    QUIET,
    REOPEN,
    SKEWS,
    STALE_RESOLUTION,
    Offered,
    World,
)

__all__ = ["PipelineModel", "database_urls", "new_machine"]

#: Where each example's database comes from: set by the test module before running the machine.
database_urls: list[str] = []


@dataclass
class Truth:
    """The reference model's state of one alert."""

    firing: bool
    starts_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class PendingCommand:
    command: Command
    episode: int
    action: str


class PipelineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if database_urls:
            url = database_urls[0]
        else:
            self._tmp = tempfile.TemporaryDirectory()
            url = f"sqlite:///{Path(self._tmp.name) / 'model.db'}"
        fresh_database(url)
        self.engine: AsyncEngine = async_engine(url)
        policy = LifecyclePolicy(quiet_period=QUIET, reopen_window=REOPEN)
        self.pipeline = Pipeline(IncidentStore(self.engine), load_rules(None), policy)
        self.system = System(self.pipeline, self.engine)
        self.world = World()
        self.truth: dict[str, Truth] = {}
        self.commands: list[PendingCommand] = []
        self.command_ids = 0
        self.windows = 0
        #: Every event the pipeline returned, in order (the outbox's content).
        self.events: list[IncidentEvent] = []

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    # -- the reference model -------------------------------------------------------------------

    def _learn(self, offered: Offered) -> None:
        """Apply a record, first time in partition order, to the reference model."""
        r = offered.record
        known = self.truth.get(r.fingerprint)
        if (
            known is not None
            and r.status == "resolved"
            and known.firing
            and r.ends_at is not None
            and max(r.ends_at, r.starts_at) < known.starts_at - STALE_RESOLUTION
        ):
            return  # a late copy of an earlier episode's resolution
        self.truth[r.fingerprint] = Truth(r.status == "firing", r.starts_at, r.received_at)

    def watermark(self) -> datetime | None:
        """Record time: the oldest of each partition's newest applied receive time; a partition
        with nothing left to apply does not hold it back (it stands at the true time, or at its
        newest receive time when a receiver's clock ran ahead)."""
        marks: list[datetime] = []
        topic = self.world.topic
        for p in range(PARTITIONS):
            applied = topic.log[p][: topic.applied[p]]
            newest = max((o.record.received_at for o in applied), default=None)
            if topic.applied[p] >= len(topic.log[p]):
                marks.append(self.world.now if newest is None else max(newest, self.world.now))
            elif newest is None:
                return None
            else:
                marks.append(newest)
        return min(marks)

    # -- the store, read back ------------------------------------------------------------------

    async def _rows(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(alerts))).mappings()]

    async def _incidents(self) -> dict[str, Incident]:
        return {i.id: i for i in await self.pipeline.store.list_incidents(limit=10_000)}

    async def _released(self) -> set[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(maintenance_windows.c.id).where(maintenance_windows.c.released_at.is_not(None))
            )
            return {r[0] for r in rows}

    # -- rules: Alertmanager -------------------------------------------------------------------

    @rule(
        index=st.integers(0, len(ALERTS) - 1),
        change=st.sampled_from(["fire", "resolve", "resend"]),
        second_route=st.booleans(),
        replica=st.integers(0, len(SKEWS) - 1),
    )
    def alertmanager(self, index: int, change: str, second_route: bool, replica: int) -> None:
        """An alert fires, resolves or stays; Alertmanager notifies one of its routes' groups."""
        if change == "fire":
            self.world.fire(index)
        elif change == "resolve":
            self.world.resolve(index)
        routes = ALERTS[index].routes
        self.world.notify(routes[-1] if second_route else routes[0], replica)

    @precondition(lambda self: bool(self.world.last_sent))
    @rule(data=st.data(), replica=st.integers(0, len(SKEWS) - 1))
    def ha_peer_copy(self, data: st.DataObject, replica: int) -> None:
        route = data.draw(st.sampled_from(sorted(self.world.last_sent)))
        self.world.send(route, self.world.last_sent[route], replica)

    @rule(minutes=st.sampled_from([0.5, 2, 5, 10, 16, 70]))
    def advance(self, minutes: float) -> None:
        self.world.now += timedelta(minutes=minutes)

    # -- rules: the worker ---------------------------------------------------------------------

    @rule(counts=st.tuples(st.integers(0, 6), st.integers(0, 6)))
    def deliver(self, counts: tuple[int, int]) -> None:
        topic = self.world.topic
        taken = [topic.take(p, n) for p, n in enumerate(counts)]
        batch: list[Offered] = []
        for i in range(max(len(t) for t in taken)):
            batch.extend(t[i] for t in taken if i < len(t))
        if not batch:
            return
        replay = all(o.offset < topic.applied[o.partition] for o in batch)
        before_rows = {r["fingerprint"]: r for r in self.run(self._rows())}
        before_incidents = self.run(self._incidents())
        events = self.run(self.system.apply(batch))
        self.events.extend(events)
        for o in batch:
            if o.offset >= topic.applied[o.partition]:
                self._learn(o)
                topic.applied[o.partition] = o.offset + 1
        if replay:
            assert events == [], f"records applied again changed something: {events}"
        self._check_openings(batch, events, before_rows, before_incidents)

    def _check_openings(
        self,
        batch: Sequence[Offered],
        events: Sequence[IncidentEvent],
        before_rows: dict[str, dict[str, Any]],
        before_incidents: dict[str, Incident],
    ) -> None:
        """No second incident for an alert its last incident could still take back."""
        received = {o.record.fingerprint: o.record.received_at for o in batch}
        for event in events:
            if event.type is not EventType.OPENED or event.alert is None:
                continue
            previous = before_rows.get(event.alert.fingerprint)
            if previous is None or previous["incident_id"] is None:
                continue
            last = before_incidents.get(previous["incident_id"])
            if last is None:
                continue
            at = received[event.alert.fingerprint]
            can_take_back = last.is_open or (
                last.resolved_at is not None and at - last.resolved_at <= REOPEN
            )
            assert not can_take_back, (
                f"alert {event.alert.fingerprint} opened {event.incident_id} while its incident "
                f"{last.id} ({last.state.value}) could still take it back"
            )

    @rule()
    def drain(self) -> None:
        """The worker catches up with everything on the topic."""
        topic = self.world.topic
        self.deliver(tuple(len(topic.log[p]) - topic.position[p] for p in range(PARTITIONS)))  # type: ignore[arg-type]

    @rule()
    def commit(self) -> None:
        self.world.topic.commit()

    @rule()
    def crash(self) -> None:
        self.world.topic.crash()

    # -- rules: timers -------------------------------------------------------------------------

    @rule()
    def tick(self) -> None:
        before = self.run(self._incidents())
        mark = self.watermark()
        events = self.run(self.system.tick(self.world))
        self.events.extend(events)
        rows = self.run(self._rows())
        for event in events:
            if event.type is not EventType.RESOLVED or event.actor.via != "sevflow":
                continue
            quiet_since = before[event.incident_id].quiet_since
            assert quiet_since is not None, f"{event.incident_id} resolved with no quiet period"
            assert mark is not None, f"{event.incident_id} resolved with no record time"
            assert mark >= quiet_since + QUIET, (
                f"{event.incident_id} resolved at {event.occurred_at} before the quiet period "
                f"passed in record time (watermark {mark}, quiet since {quiet_since})"
            )
            for row in rows:
                if row["incident_id"] == event.incident_id:
                    truth = self.truth.get(row["fingerprint"])
                    assert truth is not None, f"{row['fingerprint']} stored, never applied"
                    assert not truth.firing, (
                        f"{event.incident_id} resolved while its alert {row['fingerprint']} fires"
                    )

    @rule(minutes=st.sampled_from([5, 20, 40]))
    def open_window(self, minutes: int) -> None:
        self.windows += 1
        window = MaintenanceWindow(
            id=f"mw{self.windows}",
            matchers=('alertname="ApiDown"',),
            starts_at=self.world.now,
            ends_at=self.world.now + timedelta(minutes=minutes),
        )
        self.run(MaintenanceStore(self.engine).add(window))

    # -- rules: operators ----------------------------------------------------------------------

    @rule(
        data=st.data(),
        action=st.sampled_from(["acknowledge", "resolve"]),
        via=st.sampled_from(["api", "cli", "slack", "pagerduty"]),
        replica=st.integers(0, len(SKEWS) - 1),
    )
    def operator(self, data: st.DataObject, action: str, via: str, replica: int) -> None:
        incidents = sorted(self.run(self._incidents()).values(), key=lambda i: i.id)
        if not incidents:
            return
        incident = data.draw(st.sampled_from(incidents))
        self.command_ids += 1
        command = self.system.command(
            incident,
            command_id=f"cmd-{self.command_ids}",
            action=action,
            actor=Actor(via=via, name="oncall"),
            requested_at=self.world.now + SKEWS[replica],
        )
        self.commands.append(PendingCommand(command, incident.flaps, action))

    @precondition(lambda self: bool(self.commands))
    @rule(data=st.data())
    def apply_command(self, data: st.DataObject) -> None:
        pending = self.commands.pop(data.draw(st.integers(0, len(self.commands) - 1)))
        before = self.run(self._incidents())[pending.command.incident_id]
        result = self.run(self.pipeline.process_command(pending.command))
        self.events.extend(result.events)
        if before.flaps != pending.episode:
            assert not result.applied, (
                f"a {pending.action} given for episode {pending.episode} of {before.id} applied "
                f"to episode {before.flaps}"
            )
            return
        permitted = (
            before.state is IncidentState.TRIGGERED
            if pending.action == "acknowledge"
            else before.state is not IncidentState.RESOLVED
        )
        assert result.applied == permitted, (
            f"a {pending.action} of {before.id} ({before.state.value}, episode {before.flaps}) "
            f"given in that episode: applied={result.applied} ({result.reason})"
        )

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def stored_status_is_the_models(self) -> None:
        for row in self.run(self._rows()):
            truth = self.truth.get(row["fingerprint"])
            assert truth is not None, f"alert {row['fingerprint']} stored before any record applied"
            expected = "firing" if truth.firing else "resolved"
            assert row["status"] == expected, (
                f"alert {row['fingerprint']} stored {row['status']}, its last record says {expected}"
            )

    @invariant()
    def firing_alerts_count_once(self) -> None:
        rows = self.run(self._rows())
        incidents = self.run(self._incidents())
        released = self.run(self._released())
        counted: dict[str, int] = {}
        for row in rows:
            if row["status"] != "firing":
                continue
            held = row["suppressed_by"]
            if held is not None:
                assert held not in released, (
                    f"alert {row['fingerprint']} still held by window {held}, released already"
                )
                continue
            incident = incidents.get(row["incident_id"])
            assert incident is not None, f"firing alert {row['fingerprint']} is in no incident"
            if incident.is_open:
                counted[incident.id] = counted.get(incident.id, 0) + 1
            else:
                assert incident.resolved_by is not None, f"{incident.id} resolved by nobody"
                assert incident.resolved_by.via != "sevflow", (
                    f"firing alert {row['fingerprint']} counts in {incident.id}, resolved by sevflow"
                )
        for incident in incidents.values():
            if incident.is_open:
                assert incident.alerts_firing == counted.get(incident.id, 0), (
                    f"{incident.id} counts {incident.alerts_firing} firing alerts, "
                    f"{counted.get(incident.id, 0)} fire in it"
                )

    @invariant()
    def events_are_numbered_once(self) -> None:
        async def read() -> list[Any]:
            async with self.engine.connect() as conn:
                query = select(
                    incident_events.c.incident_id, incident_events.c.sequence, incident_events.c.event_id
                )
                return list(await conn.execute(query))

        rows = self.run(read())
        ids = [r.event_id for r in rows]
        assert len(ids) == len(set(ids)), "an event id twice in the outbox"
        by_incident: dict[str, list[int]] = {}
        for r in rows:
            by_incident.setdefault(r.incident_id, []).append(r.sequence)
        for incident_id, sequences in by_incident.items():
            assert sorted(sequences) == list(range(1, len(sequences) + 1)), (
                f"{incident_id} has event sequences {sorted(sequences)}"
            )
        returned = [str(e.event_id) for e in self.events]
        assert len(returned) == len(set(returned)), "the pipeline returned an event twice"


def new_machine() -> PipelineModel:
    """A fresh machine, as hypothesis asks for one per example.

    Handed to hypothesis instead of the class: it digests its factory's source, and for a class
    ``inspect.getsource`` parses the whole module with ``ast``, which CPython 3.11.7 can fail
    with "SystemError: AST constructor recursion depth mismatch" deep in a long test session;
    a function's source is found from its code object, without parsing."""
    return PipelineModel()
