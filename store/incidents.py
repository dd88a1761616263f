"""The incident repository: incidents, their alerts and the event timeline/outbox.

Every change goes through :meth:`IncidentStore.transaction`. Inside it, :meth:`IncidentTx.lock_groups`
takes the per-group row lock (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the transaction
holds the database write lock from ``BEGIN IMMEDIATE``), so two workers never change one group's
incidents at the same time, and :meth:`IncidentTx.stage` queues the new incident and alert states
and their events, written together when the transaction commits. An event is thus stored exactly
when its change is, and the outbox relay publishes it afterwards.
"""

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.audit import AuditEntry
from models.events import EventType, IncidentEvent, IncidentState
from models.incident import AlertState, Incident, Outcome
from store.audit import record as record_audit
from store.chunking import chunks
from store.db import reader
from store.driver_sql import insert_ignoring, upsert, values_for
from store.incident_rows import (
    ALERT_FIELDS,
    EVENT_COLUMNS,
    INCIDENT_COLUMNS,
    ParsedIncidents,
    alert_from_row,
    alert_row,
    event_row,
    incident_row,
)
from store.incident_statements import (
    ALERTS,
    APPLIED,
    GROUP_COLUMNS,
    GROUP_INCIDENTS,
    GROUPS_OF_INCIDENTS,
    KNOWN_GROUPS,
    LOCK_GROUPS,
    MOVE_POINTER,
    advance_progress,
)
from store.prepared import prepared
from store.schema import (
    alerts,
    commands,
    incident_events,
    incident_groups,
    incidents,
    partition_progress,
)

__all__ = ["IncidentStore", "IncidentTx", "alert_from_row"]


class IncidentTx:
    """One transaction's view: locked groups, cached reads, staged writes."""

    def __init__(self, conn: AsyncConnection, parsed: ParsedIncidents | None = None) -> None:
        self._conn = conn
        self._parsed = parsed if parsed is not None else ParsedIncidents()
        self._dialect = conn.dialect.name
        self._insert: Any = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        self._values = values_for(conn)
        self.incidents_by_group: dict[str, Incident | None] = {}
        #: Each locked group's latest incident id as stored (flush moves only the pointers that
        #: changed: a new incident opened or a group's first).
        self._pointers: dict[str, str | None] = {}
        self._incidents: dict[str, Incident] = {}
        self._alerts: dict[str, AlertState] = {}
        self._events: list[IncidentEvent] = []
        self._dirty_incidents: set[str] = set()
        self._dirty_alerts: set[str] = set()
        self._progress: dict[int, tuple[datetime, int]] = {}
        self._held: set[str] = set()  # groups locked in this transaction

    @property
    def connection(self) -> AsyncConnection:
        """This transaction's connection, for other repositories that read or write in it."""
        return self._conn

    async def hold_groups(self, group_keys: Iterable[str]) -> None:
        """Lock each group (in sorted order: no deadlocks) without reading its incident: what a
        repeat is decided on is read after it (store/alert_briefs.py), and :meth:`lock_groups`
        reads the incidents of the groups that change."""
        wanted = sorted(set(group_keys) - self._held)
        if not wanted:
            return
        await self._create_groups(wanted)
        if self._dialect == "postgresql":  # (SQLite: BEGIN IMMEDIATE already holds the lock)
            await self._conn.execute(LOCK_GROUPS(self._conn), {"keys": wanted})
        self._held.update(wanted)

    async def lock_groups(self, group_keys: Iterable[str]) -> dict[str, Incident | None]:
        """Lock each group (in sorted order: no deadlocks) and load its latest incident."""
        wanted = sorted(set(group_keys) - set(self.incidents_by_group))
        if not wanted:
            return self.incidents_by_group
        await self.hold_groups(wanted)
        # Read the incidents in a *new* statement: under READ COMMITTED it sees what the previous
        # lock holder committed. (Joined into the locking SELECT, PostgreSQL would return the
        # incident as of before the wait, and a concurrent change would be lost.)
        rows = await self._conn.execute(GROUP_INCIDENTS(self._conn), {"keys": wanted})
        for group_key, incident_id, document in rows.all():
            incident = self._parsed.get(incident_id, document) if document is not None else None
            self.incidents_by_group[group_key] = incident
            self._pointers[group_key] = incident.id if incident is not None else None
            if incident is not None:
                self._incidents[incident.id] = incident
        return self.incidents_by_group

    async def _create_groups(self, wanted: Sequence[str]) -> None:
        """The lock rows of the groups in ``wanted`` that have none yet. Read first: a group seen
        before (every re-sent one) costs no write, so a batch of repeats writes nothing here."""
        known: set[str] = set()
        for chunk in chunks(wanted):
            rows = await self._conn.execute(KNOWN_GROUPS(self._conn), {"keys": list(chunk)})
            known.update(rows.scalars())
        missing = [g for g in wanted if g not in known]
        if missing:
            # One statement, many parameter sets: it compiles once and is cached, where a
            # multi-row VALUES clause would be compiled again for every batch size. (A group
            # another worker creates meanwhile is left as it is.)
            await insert_ignoring(self._conn, incident_groups, "group_key", GROUP_COLUMNS).run(
                self._conn, [{"group_key": g, "incident_id": None} for g in missing]
            )

    async def lock_incidents(self, incident_ids: Iterable[str]) -> None:
        """Lock the groups of several incidents at once (later :meth:`lock_incident` calls for
        them read nothing)."""
        wanted = sorted(set(incident_ids) - set(self._incidents))
        keys: list[str] = []
        for chunk in chunks(wanted):
            rows = await self._conn.execute(GROUPS_OF_INCIDENTS(self._conn), {"ids": list(chunk)})
            keys.extend(rows.scalars())
        if keys:
            await self.lock_groups(keys)

    async def lock_incident(self, incident_id: str) -> Incident | None:
        """Lock the group of one incident and return the incident's current state."""
        if incident_id in self._incidents:  # read under its group's lock, or staged here
            return self._incidents[incident_id]
        row = (
            await self._conn.execute(select(incidents.c.group_key).where(incidents.c.id == incident_id))
        ).first()
        if row is None:
            return None
        await self.lock_groups([row.group_key])
        if incident_id in self._incidents:
            return self._incidents[incident_id]
        document = (
            await self._conn.execute(select(incidents.c.document).where(incidents.c.id == incident_id))
        ).scalar_one()
        incident = self._parsed.get(incident_id, document)
        self._incidents[incident_id] = incident
        return incident

    async def load_alerts(self, fingerprints: Iterable[str]) -> dict[str, AlertState]:
        """The stored state of these alerts (those known), cached for the transaction."""
        wanted = sorted(set(fingerprints) - set(self._alerts))
        for chunk in chunks(wanted):
            result = await self._conn.execute(ALERTS(self._conn), {"fingerprints": list(chunk)})
            for row in result.mappings():
                self._alerts[row["fingerprint"]] = alert_from_row(row)
        return self._alerts

    def alert(self, fingerprint: str) -> AlertState | None:
        return self._alerts.get(fingerprint)

    def incident(self, incident_id: str) -> Incident | None:
        """An incident read (under its group's lock) or staged in this transaction."""
        return self._incidents.get(incident_id)

    async def command_applied(self, command_id: str) -> bool:
        result = await self._conn.execute(
            select(commands.c.command_id).where(commands.c.command_id == command_id)
        )
        return result.first() is not None

    async def audit(self, entry: AuditEntry) -> None:
        """Record ``entry`` in the audit log, in this transaction."""
        await record_audit(self._conn, entry)

    async def record_command(self, command_id: str, incident_id: str, action: str, at: datetime) -> None:
        await self._conn.execute(
            self._insert(commands)
            .values(command_id=command_id, incident_id=incident_id, action=action, applied_at=at)
            .on_conflict_do_nothing(index_elements=["command_id"])
        )

    def stage(self, outcome: Outcome) -> None:
        """Queue an outcome's writes; later reads in this transaction see them."""
        incident = outcome.incident
        if incident is not None:
            self._incidents[incident.id] = incident
            latest = self.incidents_by_group.get(incident.group_key)
            # A change to an earlier incident of the group (an escalation step recorded late)
            # leaves the group with its latest one; a newly opened incident becomes it.
            opened = any(e.type is EventType.OPENED for e in outcome.events)
            if latest is None or latest.id == incident.id or opened:
                self.incidents_by_group[incident.group_key] = incident
            self._dirty_incidents.add(incident.id)
        if outcome.alert is not None:
            self._alerts[outcome.alert.fingerprint] = outcome.alert
            self._dirty_alerts.add(outcome.alert.fingerprint)
        self._events.extend(outcome.events)

    async def applied_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """The offset after the last record applied, per alerts-topic partition asked (absent:
        none recorded). Read after the groups are locked, so a batch applied meanwhile by
        another worker (a rebalance's overlap) is seen."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        rows = await self._conn.execute(APPLIED(self._conn), {"partitions": wanted})
        return {int(p): int(o) for p, o in rows.all()}

    def advance(self, progress: Mapping[int, tuple[datetime, int]]) -> None:
        """Queue, per alerts-topic partition, the newest ``received_at`` applied and the offset
        after the last record applied (written with the changes; never moved back)."""
        for partition, (at, offset) in progress.items():
            known = self._progress.get(partition)
            if known is None:
                self._progress[partition] = (at, offset)
            else:
                self._progress[partition] = (max(known[0], at), max(known[1], offset))

    async def flush(self) -> list[IncidentEvent]:
        """Write everything staged; returns the events written (the outbox rows)."""
        await self._flush_incidents()
        await self._flush_alerts()
        events, self._events = self._events, []
        if events:
            await insert_ignoring(self._conn, incident_events, "event_id", EVENT_COLUMNS).run(
                self._conn, [event_row(e, self._values) for e in events]
            )
        await self._flush_progress()
        self._dirty_incidents.clear()
        self._dirty_alerts.clear()
        return events

    async def _flush_incidents(self) -> None:
        """The changed incidents, and the groups whose latest incident moved."""
        rows = [incident_row(self._incidents[i], self._values) for i in sorted(self._dirty_incidents)]
        if not rows:
            return
        for row in rows:  # (a rolled-back document is never read back: only a miss)
            self._parsed.remember(self._incidents[row["id"]], row["document"])
        await upsert(self._conn, incidents, "id", INCIDENT_COLUMNS).run(self._conn, rows)
        moved = [
            {"g": group_key, "i": latest.id}
            for group_key, latest in sorted(self.incidents_by_group.items())
            if latest is not None and self._pointers.get(group_key) != latest.id
        ]
        if moved:
            await self._conn.execute(MOVE_POINTER, moved)
            self._pointers.update((m["g"], m["i"]) for m in moved)

    async def _flush_alerts(self) -> None:
        rows = [alert_row(self._alerts[f], self._values) for f in sorted(self._dirty_alerts)]
        await upsert(self._conn, alerts, "fingerprint", ALERT_FIELDS).run(self._conn, rows)

    async def _flush_progress(self) -> None:
        """Each partition's progress, never moved back (see :meth:`advance`)."""
        if not self._progress:
            return
        await self._conn.execute(
            prepared(self._conn, advance_progress),
            [
                {"partition": p, "newest_received_at": at, "next_offset": offset}
                for p, (at, offset) in sorted(self._progress.items())
            ],
        )
        self._progress.clear()


class IncidentStore:
    """Transactions and reads over the incident tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)
        self._parsed = ParsedIncidents()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[IncidentTx]:
        """A write transaction; staged changes are flushed and committed on normal exit."""
        async with self.engine.begin() as conn:
            tx = IncidentTx(conn, self._parsed)
            yield tx
            await tx.flush()

    async def get(self, incident_id: str) -> Incident | None:
        async with self._reader.connect() as conn:
            document = (
                await conn.execute(select(incidents.c.document).where(incidents.c.id == incident_id))
            ).scalar_one_or_none()
        return Incident.model_validate_json(document) if document is not None else None

    async def list_incidents(
        self, *, state: IncidentState | None = None, team: str | None = None, limit: int = 100
    ) -> Sequence[Incident]:
        query = select(incidents.c.document).order_by(incidents.c.opened_at.desc()).limit(limit)
        if state is not None:
            query = query.where(incidents.c.state == state.value)
        if team is not None:
            query = query.where(incidents.c.team == team)
        async with self._reader.connect() as conn:
            documents = (await conn.execute(query)).scalars().all()
        return [Incident.model_validate_json(d) for d in documents]

    async def timeline(self, incident_id: str) -> list[IncidentEvent]:
        query = (
            select(incident_events.c.document)
            .where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.sequence)
        )
        async with self._reader.connect() as conn:
            documents = (await conn.execute(query)).scalars().all()
        return [IncidentEvent.model_validate_json(d) for d in documents]

    async def partition_progress(self) -> dict[int, datetime]:
        """The newest ``received_at`` applied, per alerts-topic partition (models/watermark.py)."""
        query = select(partition_progress.c.partition, partition_progress.c.newest_received_at)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {int(p): at for p, at in rows}

    async def quiet_incidents(
        self, before: datetime, limit: int = 100, *, after: str | None = None
    ) -> list[str]:
        """Open incidents whose alerts all resolved before ``before`` (quiet period candidates),
        oldest first; with ``after``, those whose id sorts after it, by id (a page of a scan)."""
        query = (
            select(incidents.c.id)
            .where(
                and_(
                    incidents.c.state != IncidentState.RESOLVED.value,
                    incidents.c.quiet_since.is_not(None),
                    incidents.c.quiet_since <= before,
                    incidents.c.id > after if after is not None else true(),
                )
            )
            .order_by(incidents.c.quiet_since if after is None else incidents.c.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return list((await conn.execute(query)).scalars().all())
