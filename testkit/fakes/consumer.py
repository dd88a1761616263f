"""An in-memory stand-in for the sinks' Kafka consumer: one topic's partitions as lists, read in
order by ``getmany``, with the offsets the worker committed kept for the test to read.

It does what the worker relies on aiokafka for: records of a partition come in offset order,
each once (no rebalance here), and ``commit`` stores the next offset to read per partition.
The Kafka loop itself is tested against the real broker (tests/integration/test_sink_kafka.py).
"""

import asyncio
from collections.abc import Sequence

from aiokafka import TopicPartition

from models.events import IncidentEvent
from sinks.worker import Record

__all__ = ["MemoryConsumer"]


class MemoryConsumer:
    def __init__(self, topic: str = "incident-events", partitions: int = 1) -> None:
        self.topic = topic
        self.logs: dict[TopicPartition, list[Record]] = {
            TopicPartition(topic, p): [] for p in range(partitions)
        }
        self.position: dict[TopicPartition, int] = dict.fromkeys(self.logs, 0)
        self.committed: dict[TopicPartition, int] = {}

    def append(self, events: Sequence[IncidentEvent], partition: int = 0) -> list[Record]:
        """Add ``events`` to one partition; the records they became."""
        log = self.logs[TopicPartition(self.topic, partition)]
        added = [Record(self.topic, partition, len(log) + i, e.to_bytes()) for i, e in enumerate(events)]
        log.extend(added)
        return added

    def assignment(self) -> set[TopicPartition]:
        return set(self.logs)

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        batch: dict[TopicPartition, list[Record]] = {}
        room = max_records or 1_000_000
        for tp, log in self.logs.items():
            taken = log[self.position[tp] : self.position[tp] + room]
            if taken:
                batch[tp] = taken
                self.position[tp] += len(taken)
                room -= len(taken)
        if not batch:
            await asyncio.sleep(
                min(timeout_ms / 1000, 0.01)
            )  # nothing new: wait a little, as Kafka does
        return batch

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            assert offset >= self.committed.get(tp, 0), f"commit went back on {tp}"
            self.committed[tp] = offset
