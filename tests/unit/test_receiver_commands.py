"""The commands publisher starts its producer once, and cleans up a start that failed."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from models.events import Actor
from models.incident import Command
from receiver.commands import CommandPublisher

COMMAND = Command(
    command_id="api:1",
    action="acknowledge",
    incident_id="inc_0123456789abcdef",
    actor=Actor(via="api", name="alice"),
    requested_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
)


class StubProducer:
    """aiokafka's producer as the publisher uses it; its start fails while ``broker_down``."""

    def __init__(self, broker_down: bool, gate: asyncio.Event) -> None:
        self.broker_down = broker_down
        self.gate = gate
        self.started = self.stopped = False
        self.sent: list[bytes] = []

    async def start(self) -> None:
        await self.gate.wait()
        if self.broker_down:
            raise KafkaConnectionError("no broker")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, *, key: bytes, value: bytes) -> None:
        assert self.started
        assert not self.stopped
        self.sent.append(value)


class Factory:
    def __init__(self, broker_down: bool = False) -> None:
        self.broker_down = broker_down
        self.gate = asyncio.Event()
        self.gate.set()
        self.made: list[StubProducer] = []

    def __call__(self, **options: Any) -> StubProducer:
        assert options["acks"] == "all"
        self.made.append(StubProducer(self.broker_down, self.gate))
        return self.made[-1]


async def test_a_failed_start_is_stopped_and_the_next_command_starts_afresh() -> None:
    factory = Factory(broker_down=True)
    publisher = CommandPublisher("unused:9092", "commands", 1.0, producer_factory=factory)
    with pytest.raises(KafkaConnectionError):
        await publisher.publish(COMMAND)
    assert factory.made[0].stopped  # its connections closed, not left for the garbage collector
    factory.broker_down = False
    await publisher.publish(COMMAND)
    assert len(factory.made) == 2
    assert len(factory.made[1].sent) == 1
    await publisher.close()


async def test_concurrent_first_commands_start_one_producer() -> None:
    factory = Factory()
    factory.gate.clear()  # the broker is slow to answer the first start
    publisher = CommandPublisher("unused:9092", "commands", 1.0, producer_factory=factory)
    both = asyncio.gather(publisher.publish(COMMAND), publisher.publish(COMMAND))
    asyncio.get_running_loop().call_soon(factory.gate.set)
    await asyncio.wait_for(both, 1)
    assert len(factory.made) == 1
    assert len(factory.made[0].sent) == 2
    await publisher.close()
    assert factory.made[0].stopped
