"""The sinks' watch of the events topic's incarnation (sinks/incarnation.py), with Kafka's answers
scripted: a changed id is reported once and sends the topic's assigned partitions back to offset
0, an answer asked before an assignment is not taken for a change, and a Kafka that does not
answer is said once per outage. The real broker's side: tests/integration/
test_sink_topic_created_again.py."""

import asyncio
import logging
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from sinks.incarnation import Incarnation

TOPIC = "incident-events"


class Answers:
    """Kafka's answers to the id question, one per call; ``gate`` holds the next answer back."""

    def __init__(self, *answers: str | Exception | None) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.gate: asyncio.Event | None = None
        self._called = asyncio.Event()

    async def until_asked(self, times: int) -> None:
        """Wait for the ``times``-th question: the answers before it have been taken in."""
        while self.asked < times:
            self._called.clear()
            await asyncio.wait_for(self._called.wait(), 5)

    async def __call__(self, names: Sequence[str]) -> dict[str, str]:
        assert list(names) == [TOPIC]
        self.asked += 1
        self._called.set()
        answer = self.answers.pop(0)
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(answer, Exception):
            raise answer
        return {} if answer is None else {TOPIC: answer}


class Seeks:
    """What the incarnation uses of aiokafka's consumer: its assignment, and seek()."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self._assigned = assigned
        self.sought: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self._assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))


def incarnation(answers: Answers) -> Incarnation:
    return Incarnation("127.0.0.1:1", TOPIC, "group", interval=0.01, ask=answers)


async def test_a_new_id_is_reported_once_and_rewinds_the_topics_partitions() -> None:
    answers = Answers("id-a", "id-a", "id-a", *["id-b"] * 1000)
    watch = incarnation(answers)
    task = asyncio.create_task(watch.watch())
    try:
        await answers.until_asked(3)  # (a question's answer is taken in before the next one)
        assert watch.known == "id-a"
        assert not watch.changed()
        await answers.until_asked(5)
        assert watch.changed()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    mine = {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}
    consumer = Seeks(mine | {TopicPartition("another-topic", 0)})
    watch.read_anew(consumer, "pagerduty")  # type: ignore[arg-type]
    assert sorted(consumer.sought) == sorted((tp, 0) for tp in mine)
    assert watch.known == "id-b"
    assert not watch.changed()


async def test_an_answer_asked_before_an_assignment_is_not_a_change() -> None:
    """The watch asked (and got the old id) before the topic came back; the assignment meanwhile
    learnt the new one. Taken as an answer, the old id read as a change back."""
    answers = Answers("id-old", "id-new", *["id-new"] * 1000)
    watch = incarnation(answers)
    watch.known = "id-new-before"
    answers.gate = asyncio.Event()
    task = asyncio.create_task(watch.watch())
    try:
        await answers.until_asked(1)
        # The assignment's own question: answered at once.
        answers.gate.set()
        await watch.assigned(Seeks(set()), set())  # type: ignore[arg-type]
        assert watch.known == "id-new"
        await answers.until_asked(answers.asked + 3)
        assert not watch.changed()
        assert watch.known == "id-new"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_kafka_that_does_not_answer_is_said_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = KafkaConnectionError("down")
    answers = Answers(down, down, down, "id-a", down, "id-a")
    watch = incarnation(answers)
    with caplog.at_level(logging.DEBUG, logger="sinks.incarnation"):
        for _ in range(6):
            await watch.current()
    said = [r.levelno for r in caplog.records if "failed" in r.getMessage()]
    assert said == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.WARNING]
    assert watch.known is None  # (current() only answers; the watch and assignments learn)
