"""Order within an alert comes from Kafka, on the real broker and PostgreSQL: the worker passes
each record's partition and offset to the pipeline, so a resolution taken by a receiver replica
whose clock runs behind the one that took the firing still resolves the alert."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import ProgrammingError

from kafka_admin.topics import ensure_topic
from store.db import normalise_url
from store.schema import alerts, partition_progress
from testkit.harness import role_env, wait_for
from testkit.store_backends import fresh_database
from tests.builders import alert
from tests.integration.test_worker_failures import Worker, produce

pytestmark = pytest.mark.integration


def test_a_resolution_stamped_by_a_slower_clock_resolves_the_alert(
    tmp_path: Path, kafka_bootstrap: str, postgres_url: str
) -> None:
    fresh_database(postgres_url, create=False)
    suffix = uuid.uuid4().hex[:8]
    prefix = f"order-{suffix}"
    now = datetime.now(UTC).replace(microsecond=0)
    firing = alert("Skewed", instance="a").model_copy(
        update={"starts_at": now - timedelta(minutes=1), "received_at": now + timedelta(minutes=10)}
    )
    resolution = alert("Skewed", instance="a", status="resolved", at=now)
    asyncio.run(ensure_topic(kafka_bootstrap, f"{prefix}-alerts", 2))
    asyncio.run(produce(kafka_bootstrap, f"{prefix}-alerts", [firing, resolution]))
    env = role_env(
        kafka_bootstrap,
        prefix,
        postgres_url,
        tmp_path,
        quiet_period_seconds="3600",
        topic_partitions="2",
    )
    engine = create_engine(normalise_url(postgres_url, asynchronous=False))
    worker = Worker(tmp_path, env, "worker").start()

    def stored() -> dict[str, object] | None:
        try:
            with engine.connect() as conn:
                row = conn.execute(select(alerts)).mappings().first()
        except ProgrammingError:  # not migrated yet (the worker migrates at start)
            return None
        return dict(row) if row is not None and row["status"] == "resolved" else None

    try:
        row = wait_for(stored, 90, f"the resolution applied (log {worker.log})")
        with engine.connect() as conn:
            query = select(partition_progress.c.partition, partition_progress.c.newest_received_at)
            progress = dict(conn.execute(query).all())
    finally:
        worker.stop()
        engine.dispose()
    assert row["kafka_offset"] == 1
    assert row["last_received_at"] == now
    # The partition's progress is the worker's clock as it applied the records, not the faster
    # receiver's ten minutes ahead (which would carry the watermark there: streams/record_time).
    (partition, applied) = progress.popitem()
    assert (partition, progress) == (row["kafka_partition"], {})
    assert now <= applied < now + timedelta(minutes=2)
