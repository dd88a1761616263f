"""The outbox relay against an in-memory topic: each event leaves once, whatever fails."""

import contextlib
import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update

from models.event_size import EVENT_MAX_BYTES
from models.events import IncidentEvent
from models.fitting import TRUNCATED
from models.incident import LifecyclePolicy
from store.incidents import IncidentStore
from store.schema import incident_events
from streams.pipeline import Pipeline
from streams.relay import OutboxRelay
from streams.rules import load_rules
from testkit.local import REPO
from tests.builders import T0, alert


class MemoryTopic:
    """An in-memory incident-events topic: what a publish stored stays, as on Kafka.

    ``lose_acks`` publishes that many times more with the records stored but the acknowledgement
    lost (a timeout after the broker appended them)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []
        self.lose_acks = 0

    async def publish(self, records: Sequence[tuple[str, bytes]]) -> None:
        self.records.extend(records)
        if self.lose_acks:
            self.lose_acks -= 1
            raise TimeoutError("no acknowledgement")

    async def recent_event_ids(self, per_partition: int) -> set[str]:
        return {json.loads(value)["event_id"] for _, value in self.records[-per_partition:]}

    def event_ids(self) -> list[str]:
        return [json.loads(value)["event_id"] for _, value in self.records]


async def test_a_batch_whose_acknowledgement_was_lost_is_not_sent_again(engine, relay_outbox) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    await pipeline.process_alerts([alert(f"A{n}", instance="x") for n in range(3)])
    topic = MemoryTopic()
    relay = OutboxRelay(relay_outbox("worker-1"), topic)
    assert await relay.run_once(T0) == 3  # nothing to recover on the first round

    await pipeline.process_alerts(
        [alert(f"A{n}", instance="y", at=T0 + timedelta(seconds=1)) for n in range(3)]
    )
    topic.lose_acks = 1
    with contextlib.suppress(TimeoutError):
        await relay.run_once(T0 + timedelta(seconds=1))
    while await relay.run_once(T0 + timedelta(seconds=2)):
        pass
    ids = topic.event_ids()
    assert len(ids) == 6
    assert len(set(ids)) == 6


async def test_a_document_stored_over_kafkas_limit_is_published_fitted(engine, relay_outbox) -> None:  # type: ignore[no-untyped-def]
    """Events were not bounded before models/event_size.py: a document of 1.3 MB stored then
    was refused by Kafka at every round, and the relay published nothing more."""
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    await pipeline.process_alerts([alert("Huge", instance="x"), alert("Small", instance="y")])
    async with engine.begin() as conn:
        (document,) = (
            await conn.execute(select(incident_events.c.document).order_by(incident_events.c.position))
        ).first() or ()
        huge = json.loads(document)
        huge["alert"]["annotations"]["description"] = "d" * 1_300_000
        await conn.execute(
            update(incident_events)
            .where(incident_events.c.event_id == huge["event_id"])
            .values(document=json.dumps(huge))
        )
    topic = MemoryTopic()
    assert await OutboxRelay(relay_outbox("worker-1"), topic).run_once(T0) == 2
    (_, first), (_, second) = topic.records
    assert len(first) <= EVENT_MAX_BYTES
    event = IncidentEvent.model_validate_json(first)
    assert str(event.event_id) == huge["event_id"]
    assert event.alert is not None
    assert event.alert.annotations["description"].endswith(TRUNCATED)
    assert json.loads(second)["incident"]["title"]


def test_the_relay_s_process_loads_neither_sqlalchemy_nor_the_models() -> None:
    # The relay's process is half the worker's memory target: SQLAlchemy's engine and ORM,
    # pydantic and sevflow's settings and models were 35 MB of its 62 MB before its first event.
    code = "import sys, streams.relay_process; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    modules = result.stdout.split()
    assert "store.driver_outbox" in modules
    top = {m.split(".")[0] for m in modules}
    assert not top & {"sqlalchemy", "pydantic", "pydantic_settings", "psycopg", "faust", "mode"}
    pure = ["models", "models.clock", "models.event_size", "models.fitting"]  # (no pydantic)
    assert [m for m in modules if m.startswith("models")] == pure
