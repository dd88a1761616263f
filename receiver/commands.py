"""Publishing manual commands (acknowledge / resolve / escalate to the manager) onto the commands
topic.

The API, the CLI, Slack buttons and PagerDuty webhooks all turn a request into a
:class:`models.incident.Command` and publish it here; the stream worker applies it to the incident
(idempotently, by ``command_id``) and announces the change on ``incident-events``.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaProducer

from models.events import Actor, IncidentState
from models.incident import Command, Incident

__all__ = ["Action", "CommandPublisher", "Precheck", "precheck"]

Action = Literal["acknowledge", "resolve", "escalate", "note"]


@dataclass(frozen=True)
class Precheck:
    """What a command would do to the incident as the store has it, before it is published.

    ``verdict``: ``apply`` (publish it), ``unchanged`` (the incident is already in that state:
    nothing to publish, and success, so that a retry is idempotent), ``unknown`` (no such
    incident) or ``refused`` (acknowledging a resolved incident). The worker would drop the
    last three without a word, after the caller had been told the command was accepted.
    """

    verdict: Literal["apply", "unchanged", "unknown", "refused"]
    message: str
    state: IncidentState | None = None


def _done(what: str, at: datetime | None, actor: Actor | None) -> str:
    when = f" at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if at is not None else ""
    if actor is None:
        return f"{what}{when}"
    return (
        f"{what}{when} by {actor.name} ({actor.via})" if actor.name else f"{what}{when} via {actor.via}"
    )


def precheck(incident_id: str, incident: Incident | None, action: Action) -> Precheck:
    """Judge ``action`` on ``incident`` (None: not in the store); pure."""
    if incident is None:
        return Precheck("unknown", f"no incident {incident_id}")
    state = incident.state
    if state is IncidentState.RESOLVED and action != "note":  # a resolved incident takes notes
        done = _done(f"{incident_id} was resolved", incident.resolved_at, incident.resolved_by)
        if action == "resolve":
            return Precheck("unchanged", f"{done}: nothing to do", state)
        if action == "escalate":
            return Precheck("refused", f"{done}: there is nothing to escalate", state)
        return Precheck("refused", f"{done}: there is nothing to acknowledge", state)
    if action == "acknowledge" and state is IncidentState.ACKNOWLEDGED:
        done = _done(
            f"{incident_id} was acknowledged", incident.acknowledged_at, incident.acknowledged_by
        )
        return Precheck("unchanged", f"{done}: nothing to do", state)
    return Precheck("apply", f"{action} of {incident_id}", state)


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
