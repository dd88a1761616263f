"""Publishing manual commands (acknowledge / resolve) onto the commands topic.

The API, the CLI, Slack buttons and PagerDuty webhooks all turn a request into a
:class:`models.incident.Command` and publish it here; the stream worker applies it to the incident
(idempotently, by ``command_id``) and announces the change on ``incident-events``.
"""

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from models.incident import Command

__all__ = ["CommandPublisher"]


class CommandPublisher:
    """An aiokafka producer for the commands topic, keyed by incident id (acks=all).

    The producer starts on the first command, once: concurrent first commands (two Slack clicks)
    wait for the same start instead of each starting a producer and leaking all but one, and a
    start that fails is stopped (its connections closed) so the next command starts afresh.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        timeout: float = 10.0,
        *,
        producer_factory: Callable[..., AIOKafkaProducer] = AIOKafkaProducer,
    ) -> None:
        """``producer_factory`` builds the producer from aiokafka's keyword arguments (tests pass
        a stand-in)."""
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout = timeout
        self._new_producer = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = self._new_producer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, command: Command) -> None:
        """Send ``command`` and wait until Kafka acknowledged it (raises on failure/timeout)."""
        producer = await self._started()
        async with asyncio.timeout(self._timeout):
            await producer.send_and_wait(
                self._topic,
                key=command.incident_id.encode(),
                value=command.model_dump_json().encode(),
            )

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
