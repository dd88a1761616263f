"""Publishing manual commands (acknowledge / resolve) onto the commands topic.

The API, the CLI, Slack buttons and PagerDuty webhooks all turn a request into a
:class:`models.incident.Command` and publish it here; the stream worker applies it to the incident
(idempotently, by ``command_id``) and announces the change on ``incident-events``.
"""

import asyncio

from aiokafka import AIOKafkaProducer

from models.incident import Command

__all__ = ["CommandPublisher"]


class CommandPublisher:
    """An aiokafka producer for the commands topic, keyed by incident id (acks=all)."""

    def __init__(self, bootstrap: str, topic: str, timeout: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, command: Command) -> None:
        """Send ``command`` and wait until Kafka acknowledged it (raises on failure/timeout)."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=int(self._timeout * 1000),
            )
            await asyncio.wait_for(producer.start(), self._timeout)
            self._producer = producer
        async with asyncio.timeout(self._timeout):
            await self._producer.send_and_wait(
                self._topic,
                key=command.incident_id.encode(),
                value=command.model_dump_json().encode(),
            )

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
