"""The outbox relay against an in-memory topic: each event leaves once, whatever fails."""

import contextlib
import json
from collections.abc import Sequence
from datetime import timedelta

from models.incident import LifecyclePolicy
from store.incidents import IncidentStore
from store.leases import Lease
from streams.pipeline import Pipeline
from streams.relay import OutboxRelay
from streams.rules import load_rules
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


async def test_a_batch_whose_acknowledgement_was_lost_is_not_sent_again(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    await pipeline.process_alerts([alert(f"A{n}", instance="x") for n in range(3)])
    topic = MemoryTopic()
    relay = OutboxRelay(engine, Lease(engine, "relay", "worker-1", timedelta(seconds=15)), topic)
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
