"""How the commands that act on an incident (``ack``, ``resolve``, ``escalate``, ``note``) build
and queue a command: the same shape as the HTTP API's and the callbacks' (``Actor(via="cli",
name=<the login name>, note=<--by>)``, a fresh ``cli:`` id), published to the commands topic for
the worker to apply once. Kafka is imported only when a command is sent."""

import asyncio
import hashlib
import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from models.events import Actor
from models.incident import Command
from models.settings import Settings

if TYPE_CHECKING:
    from receiver.callbacks import CommandSink

__all__ = ["cli_command", "publish", "queue"]


def cli_command(
    incident_id: str,
    action: str,
    *,
    by: str | None,
    note: str | None,
    now: datetime,
    episode: int | None,
    key: str | None = None,
    **fields: Any,
) -> Command:
    """A command given on the command line: ``by`` is the login name (the actor), ``note`` what
    ``--by`` said; ``episode`` the incident's ``flaps`` as read (None: not read), so the worker
    refuses it once the incident has reopened since. ``escalate`` from the command line is always
    to the manager. ``key`` (``--idempotency-key``): the same login giving the same command with
    the same key makes the same command, applied once; without one, each run is new."""
    if key is None:
        command_id = f"cli:{uuid.uuid4().hex}"
    else:
        parts = (incident_id, action, by or "", key, json.dumps(fields, sort_keys=True))
        command_id = "cli:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return Command(
        command_id=command_id,
        action=action,
        incident_id=incident_id,
        actor=Actor(via="cli", name=by, note=note),
        requested_at=now,
        episode=episode,
        to="manager" if action == "escalate" else None,  # the playbook's escalation by hand
        **fields,
    )


async def publish(publisher: "CommandSink", command: Command) -> Command:
    """Publish ``command``; returns it."""
    await publisher.publish(command)
    return command


def queue(
    settings: Settings,
    command: Command,
    *,
    name: str,
    what: str,
    err: TextIO,
    retry: str | None = None,
) -> bool:
    """Publish ``command`` to the commands topic and wait for Kafka's acknowledgement; False
    (said on ``err`` as ``sevflow <name>: could not queue the <what>``) when Kafka did not
    confirm it. Unconfirmed is not refused: a record sent before the wait ran out is still
    delivered when the producer closes, so ``retry`` (how to repeat it as the same command) is
    said too."""
    from aiokafka.errors import KafkaError

    from receiver.commands import CommandPublisher

    async def main() -> None:
        publisher = CommandPublisher(settings.kafka_bootstrap, settings.commands_topic)
        try:
            await publisher.publish(command)
        finally:
            await publisher.close()

    try:
        asyncio.run(main())
    except (KafkaError, TimeoutError, OSError) as exc:
        print(f"sevflow {name}: could not queue the {what}: Kafka: {type(exc).__name__}", file=err)
        if retry is not None:
            print(f"sevflow {name}: Kafka may still have taken it; {retry}", file=err)
        return False
    return True
