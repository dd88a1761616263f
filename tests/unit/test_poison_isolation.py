"""Transient errors are retried, permanent ones isolated: a poison record is bisected out of its
batch and quarantined with its reason while the rest of the batch is stored (SQLite here,
PostgreSQL under the integration marker), and a run of poison beyond the limit stops the worker."""

import logging
import sqlite3

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StatementError,
)

from models.alert import AlertRecord
from models.quarantine import QuarantinedRecord, SourcePosition
from store.incidents import IncidentStore
from store.schema import alerts
from streams.failures import is_permanent, isolate, reason_of, retry_transient
from streams.pipeline import Pipeline
from streams.quarantine import MemoryQuarantine, PoisonLimit, Quarantine, TooMuchPoison
from streams.records import decode_alert, decode_command
from streams.rules import load_rules
from testkit.fakes.clock import FakeClock
from tests.builders import T0, alert
from tests.unit.test_pipeline_store import POLICY

SQL = "INSERT INTO alerts (fingerprint, labels) VALUES (%(fingerprint)s, %(labels)s)"
PARAMS = {"fingerprint": "abc", "labels": '{"customer": "secret-label-value"}'}


class PgError(Exception):
    """A DBAPI error as psycopg raises it: a SQLSTATE, a first line, a DETAIL line with values."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


TRANSIENT = [
    OperationalError(SQL, PARAMS, sqlite3.OperationalError("database is locked")),
    OperationalError(SQL, PARAMS, PgError("40001", "could not serialize access")),
    OperationalError(SQL, PARAMS, PgError("40P01", "deadlock detected")),
    OperationalError(SQL, PARAMS, PgError("55P03", "canceling statement due to lock timeout")),
    InterfaceError(SQL, PARAMS, Exception("connection already closed")),
    DBAPIError(SQL, PARAMS, Exception("server closed the connection"), connection_invalidated=True),
    OSError("connection refused"),
    TimeoutError(),
]
PERMANENT = [
    DataError(SQL, PARAMS, PgError("22001", "value too long for type character varying(64)")),
    IntegrityError(
        SQL, PARAMS, PgError("23505", "duplicate key value\nDETAIL:  Key (fingerprint)=(abc)")
    ),
    ProgrammingError(SQL, PARAMS, PgError("42P01", 'relation "alerts" does not exist')),
    StatementError("naive datetime given to a UTC column", SQL, PARAMS, ValueError("naive")),
    OperationalError(
        SQL, PARAMS, PgError("54000", "index row requires 10032 bytes, maximum size is 8191")
    ),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors(exc: BaseException) -> None:
    assert not is_permanent(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors_and_their_reason_holds_no_sql_nor_values(exc: BaseException) -> None:
    assert is_permanent(exc)
    reason = reason_of(exc)
    assert reason.startswith(type(exc).__name__)
    for secret in ("INSERT", "secret-label-value", "(abc)", "DETAIL"):
        assert secret not in reason


async def test_a_permanent_error_is_raised_at_once_and_logs_carry_no_sql(caplog) -> None:  # type: ignore[no-untyped-def]
    slept: list[float] = []
    attempts = 0

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def step() -> None:
        nonlocal attempts
        attempts += 1
        raise (TRANSIENT[0] if attempts == 1 else PERMANENT[0])

    caplog.set_level(logging.WARNING)
    with pytest.raises(DataError):
        await retry_transient("applying 1 alerts", step, sleep=sleep)
    assert (attempts, slept) == (2, [0.2])
    assert "database is locked" in caplog.text
    assert "INSERT" not in caplog.text
    assert "secret-label-value" not in caplog.text


def test_decode_names_the_field_not_the_value() -> None:
    raw = alert(instance="a").model_copy(update={"fingerprint": "f" * 65}).to_bytes()
    found = decode_alert(raw)
    assert found.record is None
    assert found.refused is not None
    assert found.refused.startswith("invalid alert record: fingerprint: ")
    assert "fff" not in found.refused
    assert decode_command(b"\xff not json").record is None
    assert decode_command(None).record is None
    assert decode_alert(alert(instance="a").to_bytes()).record == alert(instance="a")


def naive(record: AlertRecord) -> AlertRecord:
    """A record the store refuses on every back end (a naive timestamp), past validation as a
    foreign producer's bytes could never be, to reach the store's own refusal."""
    return record.model_copy(update={"starts_at": record.starts_at.replace(tzinfo=None)})


async def test_poison_is_bisected_out_and_the_rest_of_the_batch_stored(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY)
    batch = [alert(f"Group{n % 3}", instance=f"i{n}") for n in range(40)]
    batch[7] = naive(batch[7])
    batch[31] = naive(batch[31])
    if engine.dialect.name == "postgresql":  # PostgreSQL enforces VARCHAR lengths too
        batch[20] = batch[20].model_copy(update={"fingerprint": "f" * 65})
    poison = {i for i, r in enumerate(batch) if r.starts_at.tzinfo is None or len(r.fingerprint) > 64}
    transactions = 0

    async def apply(part):  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return await retry_transient("test", lambda: pipeline.process_alerts(part))

    found: list[tuple[AlertRecord, str]] = []

    async def poisoned(record: AlertRecord, exc: BaseException) -> None:
        found.append((record, reason_of(exc)))

    events = await isolate(batch, apply, poisoned)
    assert [r for r, _ in found] == [batch[i] for i in sorted(poison)]
    assert all(
        reason.split(":")[0].split(" ")[0] in ("StatementError", "DataError") for _, reason in found
    )
    assert "secret" not in str(found)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(alerts))).scalar_one()
    assert stored == len(batch) - len(poison)
    assert sorted(e.type.value for e in events).count("opened") == 3
    # Bisecting: two transactions per level of the halving for each poison record, plus the first.
    assert transactions <= 1 + 2 * len(poison) * 6


def position(offset: int) -> SourcePosition:
    return SourcePosition(topic="sevflow-alerts", partition=2, offset=offset)


async def test_quarantine_keeps_bytes_and_reason_and_counts() -> None:
    memory = MemoryQuarantine()
    clock = FakeClock(T0)
    registry = CollectorRegistry()
    quarantine = Quarantine(
        memory,
        {"sevflow-alerts": "sevflow-alerts-quarantine"},
        PoisonLimit(10),
        clock.now,
        registry,
    )
    await quarantine.put(position(5), b"key", b"\xff\x00value", "undecodable", "not JSON")
    [(topic, record)] = memory.records
    assert topic == "sevflow-alerts-quarantine"
    again = QuarantinedRecord.model_validate_json(record.to_bytes())
    assert (again.key_bytes(), again.value_bytes()) == (b"key", b"\xff\x00value")
    assert (again.source, again.error, again.reason, again.quarantined_at) == (
        position(5),
        "undecodable",
        "not JSON",
        T0,
    )
    labels = {"topic": "sevflow-alerts", "reason": "undecodable"}
    assert registry.get_sample_value("sevflow_records_quarantined_total", labels) == 1


async def test_more_poison_in_a_row_than_the_limit_stops_instead() -> None:
    memory = MemoryQuarantine()
    clock = FakeClock(T0)
    topics = {"sevflow-alerts": "q"}
    quarantine = Quarantine(memory, topics, PoisonLimit(3), clock.now, CollectorRegistry())
    for offset in range(3):
        await quarantine.put(position(offset), None, b"x", "undecodable", "x")
    quarantine.applied()  # a good record between: the run starts again
    for offset in range(3, 6):
        await quarantine.put(position(offset), None, b"x", "undecodable", "x")
    with pytest.raises(TooMuchPoison, match="SEVFLOW_WORKER_POISON_LIMIT=3"):
        await quarantine.put(position(6), None, b"x", "undecodable", "x")
    assert [r.source.offset for _, r in memory.records] == [0, 1, 2, 3, 4, 5]
    unlimited = Quarantine(memory, topics, PoisonLimit(0), clock.now, CollectorRegistry())
    for offset in range(7, 200):
        await unlimited.put(position(offset), None, b"x", "undecodable", "x")
    assert len(memory.records) == 199
