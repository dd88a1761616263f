"""store/driver_outbox.py: the relay's lease and outbox statements through the driver behave as
store/leases.py's ``Lease`` and share its rows, on SQLite and PostgreSQL."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.incident import LifecyclePolicy
from store.db import async_engine
from store.driver_connect import DriverError
from store.driver_outbox import DriverOutbox
from store.incidents import IncidentStore
from store.leases import Lease
from store.schema import incident_events, leases
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.builders import T0, alert

S = timedelta(seconds=1)

#: The two ways of holding a lease: the worker's timers' (SQLAlchemy) and the relay's (driver).
KINDS = ["sqlalchemy", "driver"]


@pytest.fixture
def holder(engine: AsyncEngine, relay_outbox: Callable[..., DriverOutbox]) -> Callable[..., Any]:
    def make(kind: str, name: str, who: str, ttl: timedelta = 10 * S) -> Any:
        return Lease(engine, name, who, ttl) if kind == "sqlalchemy" else relay_outbox(who, name, ttl)

    return make


async def expiry(engine: AsyncEngine, name: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(select(leases.c.expires_at).where(leases.c.name == name))).scalar()


async def published(engine: AsyncEngine) -> dict[int, object]:
    async with engine.connect() as conn:
        query = select(incident_events.c.position, incident_events.c.published_at)
        return {row.position: row.published_at for row in await conn.execute(query)}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_held_lease_is_renewed_once_half_its_ttl_has_passed(
    engine: AsyncEngine, holder: Callable[..., Any], kind: str
) -> None:
    a, b = holder(kind, "y", "a"), holder(kind, "y", "b")
    assert await a.acquire(T0)
    assert await a.acquire(T0 + 4 * S)  # still held for 6 s: not written again
    assert await expiry(engine, "y") == T0 + 10 * S
    assert await a.acquire(T0 + 6 * S)
    assert await expiry(engine, "y") == T0 + 16 * S
    assert not await b.acquire(T0 + 12 * S)  # the renewal kept b out


@pytest.mark.parametrize("first", KINDS)
@pytest.mark.parametrize("second", KINDS)
async def test_a_lease_fences_a_stale_holder_whichever_way_each_holds_it(
    holder: Callable[..., Any], first: str, second: str
) -> None:
    a, b = holder(first, "x", "a"), holder(second, "x", "b")
    assert await a.acquire(T0)
    assert not await b.acquire(T0 + 5 * S)
    assert await b.acquire(T0 + 11 * S)  # a's expired: the times compare as the other wrote them
    assert b.token is not None
    assert a.token is not None
    assert b.token > a.token
    assert not await a.acquire(T0 + 12 * S)
    taken = b.token
    await b.release()
    assert b.token is None
    assert await a.acquire(T0 + 13 * S)
    assert a.token == taken + 1


async def test_events_are_read_in_storage_order_and_marked_only_under_the_lease(
    engine: AsyncEngine, relay_outbox: Callable[..., DriverOutbox]
) -> None:
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    await pipeline.process_alerts([alert(f"A{n}", instance="x") for n in range(3)])
    a, b = relay_outbox("a", ttl=10 * S), relay_outbox("b", ttl=10 * S)
    assert await a.acquire(T0)
    rows = await a.unpublished(10)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                select(
                    incident_events.c.position,
                    incident_events.c.event_id,
                    incident_events.c.incident_id,
                    incident_events.c.document,
                ).order_by(incident_events.c.position)
            )
        ).all()
    assert [tuple(r) for r in rows] == [tuple(r) for r in stored]
    assert len(rows) == 3
    assert [r.position for r in await a.unpublished(2)] == [r.position for r in rows[:2]]

    await a.mark_published([rows[0].position], T0 + S)
    assert (await published(engine))[rows[0].position] == T0 + S
    assert [r.position for r in await b.unpublished(10)] == [r.position for r in rows[1:]]

    assert await b.acquire(T0 + 11 * S)  # a's lease expired: b holds it with a new token
    await a.mark_published([rows[1].position], T0 + 12 * S)  # the fence: nothing changes
    assert (await published(engine))[rows[1].position] is None
    await b.mark_published([r.position for r in rows[1:]], T0 + 12 * S)
    assert await b.unpublished(10) == []
    assert set((await published(engine)).values()) == {T0 + S, T0 + 12 * S}


async def test_a_lost_connection_fails_one_call_and_the_next_connects_again(
    relay_outbox: Callable[..., DriverOutbox],
) -> None:
    outbox = relay_outbox("a")
    assert await outbox.acquire(T0)
    connection = outbox._connection
    assert connection is not None
    connection.conn.close()  # as a restarted server or a dropped socket leaves it
    with pytest.raises(DriverError):
        await outbox.unpublished(10)
    assert await outbox.unpublished(10) == []
    assert outbox._connection is not connection


async def test_a_url_with_options_only_sqlalchemy_reads_is_opened_through_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)
    engine = async_engine(url)
    outbox = DriverOutbox(f"{url}?timeout=5", "relay", "a", 10 * S)
    try:
        pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
        await pipeline.process_alerts([alert("A", instance="x")])
        assert await outbox.acquire(T0)
        rows = await outbox.unpublished(10)
        assert len(rows) == 1
        await outbox.mark_published([rows[0].position], T0)
        assert await outbox.unpublished(10) == []
    finally:
        await outbox.close()
        await engine.dispose()
