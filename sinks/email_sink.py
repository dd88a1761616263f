"""The email sink: the escalation policy's email contacts, by SMTP, one thread per incident.

::

    escalated naming email targets   an email to those addresses; the incident's first opens
                                     its thread, a later one (legal after security) joins it
    acknowledged, severity changed,  a reply in the thread to everyone emailed so far
    reopened, resolved
    anything else, canary incidents  nothing

Every send goes through :class:`Effects` (delivery log, retries with backoff, circuit breaker),
one step per event: a redelivered event whose email the server accepted is not sent again. The
thread (the opening's Message-ID, its subject, the addresses emailed) is kept in the delivery
log's references of the incident, written with the step that sent it.

An email's ``Message-ID`` is derived from (incident, event), so the one case that can repeat an
email, a server that took the DATA but whose answer never arrived (the connection dropped, or the
process died before the log was written), repeats it with the same ``Message-ID``: at least
once, never silently twice (:mod:`sinks.email_client`).

The incident's Slack channel, when the Slack sink has opened it, is named in the email (read
from the Slack sink's references; the email does not wait for it).
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

from models.events import EventType, IncidentEvent
from sinks.base import Failure, each_event
from sinks.effects import Effects, Result
from sinks.email_client import SmtpSender
from sinks.email_format import REPLY_TYPES, Thread, contact_email, recipients, reply_email

__all__ = ["EmailSink"]

log = logging.getLogger(__name__)

#: The Slack sink's name in the delivery log, and its reference to the incident's channel.
SLACK_SINK = "slack"
SLACK_CHANNEL_REF = "channel_name"


def _thread(refs: dict[str, str]) -> Thread | None:
    if "thread" not in refs:
        return None
    emailed = tuple(a for a in refs.get("recipients", "").split(",") if a)
    return Thread(refs["thread"], refs.get("subject", ""), emailed)


class EmailSink:
    name = "email"

    def __init__(self, sender: SmtpSender, effects: Effects) -> None:
        self._sender = sender
        self._effects = effects

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        await self._effects.preload(events)

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        return await each_event(events, self._deliver)

    async def _deliver(self, event: IncidentEvent) -> None:
        if event.incident.canary:
            return
        if event.type is EventType.ESCALATED:
            to = recipients(event)
            if to:
                await self._contacts(event, to)
        elif event.type in REPLY_TYPES:
            thread = _thread(await self._effects.log.refs(self.name, event.incident_id))
            if thread is not None:
                await self._reply(event, thread)

    async def _channel(self, incident_id: str) -> str | None:
        refs = await self._effects.log.refs(SLACK_SINK, incident_id)
        return refs.get(SLACK_CHANNEL_REF)

    async def _contacts(self, event: IncidentEvent, to: list[str]) -> None:
        if await self._effects.done(event, "email"):
            return
        thread = _thread(await self._effects.log.refs(self.name, event.incident_id))
        message = contact_email(
            event,
            to,
            sender=self._sender.sender,
            channel=await self._channel(event.incident_id),
            thread=thread,
        )
        emailed = list(thread.recipients) if thread else []
        emailed += [a for a in to if a not in emailed]
        refs = {
            "thread": thread.root if thread else str(message["Message-ID"]),
            "subject": thread.subject if thread else str(message["Subject"]),
            "recipients": ",".join(emailed),
        }
        await self._send_once(event, message, to, refs)

    async def _reply(self, event: IncidentEvent, thread: Thread) -> None:
        if await self._effects.done(event, "email"):
            return
        message = reply_email(
            event, thread, sender=self._sender.sender, channel=await self._channel(event.incident_id)
        )
        await self._send_once(event, message, thread.recipients, None)

    async def _send_once(
        self,
        event: IncidentEvent,
        message: EmailMessage,
        to: Sequence[str],
        refs: dict[str, str] | None,
    ) -> None:
        async def send() -> Result:
            accepted = await self._sender.send(message, to)
            if accepted.refused:
                # The others have it: sending again would repeat it to them. Kept in the log.
                log.warning(
                    "email %s of %s: the server refused %s",
                    event.type,
                    event.incident_id,
                    ", ".join(f"{a} ({why})" for a, why in accepted.refused.items()),
                )
            result = {"message_id": str(message["Message-ID"]), "to": ",".join(to)}
            if accepted.refused:
                result["refused"] = "; ".join(f"{a} {why}" for a, why in accepted.refused.items())
            return result

        await self._effects.once([event], "email", send, refs=(lambda _r: refs) if refs else None)

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        """Storm digests carry openings, which are not emailed (escalations are)."""
        return []

    async def close(self) -> None:
        return None
