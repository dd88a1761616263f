"""The built-in status page while its store is down or busy, on SQLite and PostgreSQL.

The page is most read when something is broken, the database included: it answers from the last
view it read (which says when it was generated), or with a plain 503 and Retry-After when it has
none, and never waits longer than its read timeout.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from sinks.status_server import create_status_app, public_id
from store.db import async_engine
from store.status_page import StatusPageRecord, StatusPageStore
from testkit.fakes.events import T0


def opened(incident_id: str = "inc_1") -> StatusPageRecord:
    return StatusPageRecord(
        incident_id=incident_id,
        name="API errors",
        status="investigating",
        impact="major",
        components={"api": "partial_outage"},
        updates=[{"at": T0.isoformat(), "status": "Investigating", "body": "We are investigating."}],
        created_at=T0,
        updated_at=T0,
        resolved_at=None,
    )


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://status")


async def test_a_store_gone_down_serves_the_last_view(engine: AsyncEngine) -> None:
    store = StatusPageStore(engine)
    await store.save(opened())
    async with client(create_status_app(store, lambda: T0, "Acme", read_timeout=2.0)) as http:
        assert (await http.get("/")).status_code == 200
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE status_page_incidents"))
        page = await http.get("/")
        data = await http.get("/api/status.json")
    assert page.status_code == 200
    assert "API errors" in page.text
    assert data.status_code == 200
    assert [i["id"] for i in data.json()["incidents"]] == [public_id("inc_1")]


async def test_a_store_down_from_the_start_answers_503(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE status_page_incidents"))
    store = StatusPageStore(engine)
    async with client(create_status_app(store, lambda: T0, "Acme", read_timeout=2.0)) as http:
        page = await http.get("/")
        data = await http.get("/api/status.json")
        health = await http.get("/health")
    for answer in (page, data):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "30"
        assert answer.headers["cache-control"] == "no-store"
    assert page.headers["content-type"].startswith("text/html")
    assert "temporarily unavailable" in page.text
    assert data.json() == {"error": "status temporarily unavailable"}
    assert health.status_code == 200


@pytest.fixture
async def locker(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = async_engine(postgres_url)
    yield engine
    await engine.dispose()


@pytest.mark.integration
async def test_a_locked_table_does_not_hang_the_page(postgres_url: str, locker: AsyncEngine) -> None:
    """A migration's ACCESS EXCLUSIVE lock blocks every read of the table: the page answers from
    the last view within its read timeout, and requests meanwhile share one read."""
    from testkit.store_backends import fresh_database

    fresh_database(postgres_url)
    engine = async_engine(postgres_url)
    try:
        store = StatusPageStore(engine)
        await store.save(opened())
        app = create_status_app(store, lambda: T0, "Acme", read_timeout=0.5)
        async with client(app) as http:
            assert (await http.get("/api/status.json")).status_code == 200
            async with locker.connect() as conn:
                await conn.begin()
                await conn.execute(text("LOCK TABLE status_page_incidents IN ACCESS EXCLUSIVE MODE"))
                started = time.monotonic()
                answers = await asyncio.gather(*(http.get("/api/status.json") for _ in range(20)))
                waited = time.monotonic() - started
                async with engine.connect() as probe:
                    reads = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE '%status_page_incidents%'"
                        )
                    )
                await conn.rollback()
            # The shared read, unblocked, ends (and gives its connection back) within this one.
            assert (await http.get("/api/status.json")).status_code == 200
        assert waited < 5
        assert {a.status_code for a in answers} == {200}
        assert all(a.json()["incidents"][0]["id"] == public_id("inc_1") for a in answers)
        assert reads == 1
    finally:
        await engine.dispose()
