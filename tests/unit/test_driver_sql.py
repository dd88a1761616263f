"""The worker's rows go to the driver as they are (store/driver_sql.py): they must be the rows
SQLAlchemy's column types would have written, and read back to the same values, on both back
ends. Each test writes the same models both ways and compares the stored columns."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.escalation import playbook_policy
from models.events import IncidentEvent
from models.incident import AlertState, Incident, LifecyclePolicy, Outcome
from store.alert_briefs import read_briefs
from store.driver_sql import values_for
from store.escalation_schema import escalations
from store.escalations import EscalationTx, _row
from store.incident_rows import ALERT_FIELDS
from store.incidents import IncidentStore
from store.schema import alerts, incident_events, incidents
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert

#: An instant given in another offset, with no microseconds: both are rewritten for SQLite.
ELSEWHERE = datetime(2026, 11, 27, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
JSON_COLUMNS = {"labels", "annotations"}


async def _stored(engine: AsyncEngine) -> tuple[Incident, AlertState, IncidentEvent]:
    """An incident, its alert and its opening event, as the pipeline stores them."""
    store = IncidentStore(engine)
    events = await Pipeline(store, load_rules(None), LifecyclePolicy()).process_alerts([alert()])
    async with store.transaction() as tx:
        await tx.lock_groups([events[0].incident.group_key])
        incident = tx.incident(events[0].incident_id)
        await tx.load_alerts([alert().fingerprint])
        state = tx.alert(alert().fingerprint)
    assert incident is not None
    assert state is not None
    return incident, state, events[0]


def _core_rows(
    incident: Incident, state: AlertState, event: IncidentEvent
) -> dict[Table, dict[str, Any]]:
    """The rows as SQLAlchemy Core is given them (its column types convert the values)."""
    return {
        incidents: {
            "id": incident.id,
            "group_key": incident.group_key,
            "state": incident.state.value,
            "severity": incident.severity.value,
            "title": incident.title,
            "opened_at": incident.opened_at,
            "acknowledged_at": incident.acknowledged_at,
            "resolved_at": incident.resolved_at,
            "quiet_since": incident.quiet_since,
            "sequence": incident.sequence,
            "team": incident.team,
            "document": incident.model_dump_json(),
        },
        alerts: {**{n: getattr(state, n) for n in ALERT_FIELDS}, "severity": state.severity.value},
        incident_events: {
            "event_id": str(event.event_id),
            "incident_id": event.incident_id,
            "sequence": event.sequence,
            "type": event.type.value,
            "occurred_at": event.occurred_at,
            "document": event.model_dump_json(),
            "published_at": None,
        },
    }


_KEYS = {incidents: "id", alerts: "fingerprint", incident_events: "event_id"}


async def _driver_row(engine: AsyncEngine, table: str, column: str, key: str) -> dict[str, Any]:
    """The row of ``table`` whose ``column`` is ``key``, as the driver returns it."""
    async with engine.connect() as conn:
        quote = "?" if conn.dialect.name == "sqlite" else "%(k)s"
        result = await conn.exec_driver_sql(
            f"SELECT * FROM {table} WHERE {column} = {quote}",
            (key,) if quote == "?" else {"k": key},
        )
        return dict(result.mappings().one())


async def _raw(engine: AsyncEngine, table: Table, key: str) -> dict[str, Any]:
    """The row's columns as the driver returns them (SQLite: the stored text), but for the
    generated position and the JSON columns parsed (their spacing may differ)."""
    column = _KEYS[table]
    row = await _driver_row(engine, table.name, column, key)
    row.pop("position", None)
    row.pop(column)
    for name in JSON_COLUMNS & set(row):
        row[name] = json.loads(row[name]) if isinstance(row[name], str) else row[name]
    return row


async def test_rows_written_through_the_driver_are_what_sqlalchemy_writes(engine) -> None:  # type: ignore[no-untyped-def]
    incident, state, event = await _stored(engine)
    # Times in another offset and without microseconds; a JSON label outside ASCII.
    incident = incident.model_copy(update={"opened_at": ELSEWHERE, "quiet_since": ELSEWHERE})
    state = state.model_copy(
        update={"starts_at": ELSEWHERE, "labels": {**state.labels, "zone": 'zürich "a"'}}
    )
    event = event.model_copy(  # (a new event: the stored one would be left as it is)
        update={"occurred_at": ELSEWHERE + timedelta(microseconds=7), "event_id": uuid.uuid4()}
    )
    async with IncidentStore(engine).transaction() as tx:  # the driver's way
        tx.stage(Outcome(incident, state, [event]))
    copies = {incidents: "inc_core", alerts: "fp-core", incident_events: str(uuid.uuid4())}
    async with engine.begin() as conn:  # SQLAlchemy's way, under other keys
        for table, row in _core_rows(incident, state, event).items():
            await conn.execute(insert(table).values({**row, _KEYS[table]: copies[table]}))
    originals = {incidents: incident.id, alerts: state.fingerprint, incident_events: str(event.event_id)}
    for table, key in originals.items():
        assert await _raw(engine, table, key) == await _raw(engine, table, copies[table]), table.name


async def test_what_the_driver_wrote_reads_back_through_sqlalchemy(engine) -> None:  # type: ignore[no-untyped-def]
    _, state, _ = await _stored(engine)
    async with engine.connect() as conn:
        query = select(alerts).where(alerts.c.fingerprint == state.fingerprint)
        row = (await conn.execute(query)).mappings().one()
        briefs = await read_briefs(conn, [state.fingerprint])
    assert row["starts_at"] == state.starts_at
    assert row["starts_at"].utcoffset() == timedelta(0)
    assert row["labels"] == state.labels
    brief = briefs[state.fingerprint]
    assert (brief.starts_at, brief.last_received_at) == (state.starts_at, state.last_received_at)
    assert brief.starts_at.tzinfo is UTC
    assert brief.last_received_at.tzinfo is UTC


async def test_a_naive_time_is_refused_before_it_is_stored(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        time = values_for(conn).time
    with pytest.raises(StatementError, match="naive datetime"):  # refused, as by SQLAlchemy
        time(T0.replace(tzinfo=None))
    assert time(None) is None


async def test_equal_instants_in_different_offsets_are_one_time(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        values = values_for(conn)
    given = [ELSEWHERE, ELSEWHERE.astimezone(UTC)]
    written = [values.time(t) for t in given]
    assert written[0] == written[1]
    assert values.read_time(written[0]) == ELSEWHERE


async def test_an_escalation_armed_through_the_driver_is_the_row_sqlalchemy_writes(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(
        IncidentStore(engine), load_rules(None), LifecyclePolicy(), escalation=playbook_policy()
    )
    events = await pipeline.process_alerts([alert()])  # opened, and its escalation armed
    incident_id = events[0].incident_id
    async with engine.begin() as conn:
        etx = EscalationTx(conn)
        state = await etx.load(incident_id)
        assert state is not None
        query = select(escalations.c.updated_at).where(escalations.c.incident_id == incident_id)
        updated = (await conn.execute(query)).scalar_one()
        copy = state.model_copy(update={"incident_id": "inc_core"})
        await conn.execute(insert(escalations).values(_row(copy, updated)))
    driver, core = [await _escalation(engine, i) for i in (incident_id, "inc_core")]
    assert driver == core
    stored = state.model_dump(mode="json")
    stored.pop("incident_id")
    stored.pop("escalation_id", None)
    assert driver["document"] == stored


def test_an_escalation_document_is_its_state_s_json_with_the_snapshot_written_once() -> None:
    """Incidents of the same services share their snapshot (policy.snapshot): its JSON is made
    once and each document still reads back as its own state."""
    from datetime import UTC, datetime

    from models.escalation import EscalationState
    from models.severity import Severity
    from store.escalations import _SNAPSHOT_TEXTS, _document

    snapshot = playbook_policy().snapshot(["api"])
    states = [
        EscalationState(
            incident_id=f"inc_{i}",
            generation=0,
            started_at=datetime(2026, 12, 6, 8, i, tzinfo=UTC),
            snapshot=snapshot,
            severity=Severity.SEV1,
            fired={"0:primary": "primary"} if i else {},
        )
        for i in range(3)
    ]
    documents = [_document(s) for s in states]
    assert _SNAPSHOT_TEXTS[id(snapshot)][0] is snapshot
    for state, document in zip(states, documents, strict=True):
        assert json.loads(document) == json.loads(state.model_dump_json())
        assert EscalationState.model_validate_json(document) == state


async def _escalation(engine: AsyncEngine, incident_id: str) -> dict[str, Any]:
    """An escalation row as the driver returns it, its document parsed, without its key."""
    row = await _driver_row(engine, "escalations", "incident_id", incident_id)
    for key in ("incident_id", "escalation_id"):  # (the escalation's id is its incident's)
        row.pop(key)
    document = row["document"]
    row["document"] = json.loads(document) if isinstance(document, str) else document
    row["document"].pop("incident_id")
    row["document"].pop("escalation_id", None)
    return row
