"""Waiting until a running sevflow has done everything its inputs can cause, so that a test may
then assert that nothing extra happened (no second page, no second incident).

Settled means, in one pass and in this order: the worker's consumer group (faust's, named by
``SEVFLOW_APP_ID``) has committed the alerts, commands and probe-results topics through their
end; the outbox holds no unpublished event; every sink's consumer group (named by
``SEVFLOW_SINKS_GROUP_PREFIX``) has committed incident-events through its last record (the relay
writes it in transactions: the commit marker that ends the last one takes an offset but is no
record). The worker commits a record once applied, its incident events are then in the outbox,
and a sink commits a partition only up to its oldest record not yet delivered, dead-lettered or
skipped (sinks/offsets.py): so after such a pass every effect of every record produced before it
has happened. A sink group that has not joined yet is not seen: call this after at least one
delivery by each sink that matters.
"""

import asyncio
import time
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from store.db import normalise_url
from store.schema import incident_events
from testkit.kafka_io import behind

__all__ = ["consumer_groups", "unpublished_events", "wait_settled"]


async def consumer_groups(bootstrap: str, prefix: str) -> list[str]:
    """The consumer groups the broker knows whose name starts with ``prefix``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        listed = await admin.list_consumer_groups()
        return sorted(str(group[0]) for group in listed if str(group[0]).startswith(prefix))
    finally:
        await admin.close()


def unpublished_events(database_url: str) -> int:
    """Incident events in the outbox not yet on incident-events (-1 before the tables exist)."""
    engine = create_engine(normalise_url(database_url, asynchronous=False))
    query = select(func.count()).select_from(incident_events)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query.where(incident_events.c.published_at.is_(None))).scalar_one())
    except OperationalError:
        return -1
    finally:
        engine.dispose()


async def _unsettled(env: Mapping[str, str]) -> dict[str, object]:
    """What is not done yet, checked in the order of the module docstring (empty: settled)."""
    bootstrap = env["SEVFLOW_KAFKA_BOOTSTRAP"]
    worker = env["SEVFLOW_APP_ID"]
    for name in ("SEVFLOW_ALERTS_TOPIC", "SEVFLOW_COMMANDS_TOPIC", "SEVFLOW_PROBE_RESULTS_TOPIC"):
        if short := await behind(bootstrap, env[name], [worker]):
            return {env[name]: short}
    if (backlog := unpublished_events(env["SEVFLOW_DATABASE_URL"])) != 0:
        return {"outbox": backlog}
    sinks = await consumer_groups(bootstrap, f"{env['SEVFLOW_SINKS_GROUP_PREFIX']}-")
    if not sinks:
        return {"sinks": "no sink's consumer group has joined"}
    events = env["SEVFLOW_EVENTS_TOPIC"]
    if short := await behind(bootstrap, events, sinks, transactional=True):
        return {events: short}
    return {}


def wait_settled(env: Mapping[str, str], within: float = 60.0) -> None:
    """Wait until the sevflow run with environment ``env`` (``Sevflow.env()``) has settled;
    fails after ``within`` seconds, naming what was still to do."""
    deadline = time.monotonic() + within
    while unsettled := asyncio.run(_unsettled(env)):
        if time.monotonic() > deadline:
            raise AssertionError(f"sevflow not settled in {within:.0f}s: {unsettled}")
        time.sleep(0.2)
