"""The worker's check of its source topics at each assignment (streams/source_topics.py), with
Kafka's answers scripted and a real store."""

import asyncio
import logging
from collections.abc import Sequence

import pytest
from aiokafka.errors import IncompatibleBrokerVersion, KafkaConnectionError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.alert import RecordPosition
from store.schema import alert_source, partition_progress
from streams.source_topics import SourceTopics
from tests.builders import T0, alert
from tests.unit.test_pipeline_store import pipeline

SOURCES = ["alerts", "commands"]
BOTH = {"alerts": "a-1", "commands": "c-1"}


class Kafka:
    """Kafka's answers, one per question (the last one repeated), and the questions asked."""

    def __init__(self, *answers: dict[str, str] | BaseException) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, bootstrap: str, names: Sequence[str]) -> dict[str, str]:
        assert (bootstrap, list(names)) == ("kafka:9092", SOURCES)
        await self.release.wait()
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        if isinstance(answer, BaseException):
            raise answer
        return {name: id_ for name, id_ in answer.items() if name in names}


def checker(engine: AsyncEngine, kafka: Kafka, reasons: list[str]) -> SourceTopics:
    return SourceTopics(
        "kafka:9092", SOURCES, engine, lambda: T0, reasons.append, ask=kafka, pause=0.01, grace=0.05
    )


async def _recorded(engine: AsyncEngine) -> tuple[str, str] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(alert_source.c.topic, alert_source.c.topic_id))).first()
    return None if row is None else (row.topic, row.topic_id)


async def test_a_batch_waits_for_the_assignment_s_check(engine: AsyncEngine) -> None:
    kafka, reasons = Kafka(BOTH), []
    kafka.release.clear()
    topics = checker(engine, kafka, reasons)
    await topics.ready()  # before any assignment: nothing to wait for
    topics.assigning()
    waiting = asyncio.ensure_future(topics.ready())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # Kafka has not answered yet
    kafka.release.set()
    await asyncio.wait_for(waiting, 5)
    assert await _recorded(engine) == ("alerts", "a-1")
    topics.assigning()  # a rebalance, same topics: nothing to do
    await topics.ready()
    assert (reasons, kafka.asked) == ([], 2)


async def test_kafka_unreachable_is_asked_again(engine: AsyncEngine) -> None:
    kafka, reasons = Kafka(KafkaConnectionError(), OSError("refused"), BOTH), []
    topics = checker(engine, kafka, reasons)
    topics.assigning()
    await asyncio.wait_for(topics.ready(), 5)
    assert (reasons, kafka.asked, await _recorded(engine)) == ([], 3, ("alerts", "a-1"))


async def test_a_topic_missing_past_the_grace_makes_the_worker_leave(engine: AsyncEngine) -> None:
    kafka, reasons = Kafka({"alerts": "a-1"}), []
    topics = checker(engine, kafka, reasons)
    topics.assigning()
    await asyncio.wait_for(topics.ready(), 5)
    assert len(reasons) == 1
    assert reasons[0].startswith("topic commands no longer exists (deleted while the worker read")
    assert kafka.asked >= 3


async def test_a_topic_back_within_the_grace_is_no_reason_to_leave(engine: AsyncEngine) -> None:
    kafka, reasons = Kafka({"alerts": "a-1"}, BOTH), []
    topics = checker(engine, kafka, reasons)
    topics.assigning()
    await asyncio.wait_for(topics.ready(), 5)
    assert (reasons, kafka.asked) == ([], 2)


async def test_a_topic_created_again_forgets_positions_then_leaves(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await pipeline(engine).process_alerts([alert(instance="a")], [RecordPosition(0, 5)])
    kafka, reasons = Kafka(BOTH, {"alerts": "a-2", "commands": "c-1"}), []
    topics = checker(engine, kafka, reasons)
    topics.assigning()
    await topics.ready()
    with caplog.at_level(logging.WARNING, logger="streams.source_topics"):
        topics.assigning()
        await topics.ready()
    assert await _recorded(engine) == ("alerts", "a-2")
    async with engine.connect() as conn:
        assert (await conn.execute(select(partition_progress.c.next_offset))).scalars().all() == [None]
    assert reasons == [
        "topic alerts was deleted and created again while the worker read it (the worker's "
        "consumer reads it anew once started again)"
    ]
    assert (
        "the alerts topic alerts (id a-2) is not the topic the stored positions came from "
        "(alerts, id a-1)" in caplog.text
    )


async def test_a_broker_without_topic_ids_is_said_once(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    kafka, reasons = Kafka(IncompatibleBrokerVersion()), []
    topics = checker(engine, kafka, reasons)
    with caplog.at_level(logging.WARNING, logger="streams.source_topics"):
        for _ in range(2):
            topics.assigning()
            await topics.ready()
    assert (reasons, await _recorded(engine)) == ([], None)
    assert caplog.text.count("Kafka does not answer Metadata v12") == 1
