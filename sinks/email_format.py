"""Incident events → emails to the escalation policy's email contacts. Pure.

Who: the ``email`` targets an ``escalated`` event names (:func:`recipients`): the playbook's
security contact for every security incident, legal for data breaches, and any email target a
policy file puts on a level. The first email of an incident opens its thread; later changes
(acknowledged, severity changed, reopened, resolved with root cause and fix) go to everyone
emailed so far as replies (``In-Reply-To`` and ``References`` = the opening's ``Message-ID``).

Every email's ``Message-ID`` is a function of (incident, event) (:func:`message_id`) and its
``Date`` is the event's time, so a retry sends the same message: a server that got it twice (it
took the DATA, then the connection dropped before its answer) holds two copies with one
``Message-ID``. Everything in a header comes from the event with line breaks and control
characters removed, so an alert's words cannot add a header (or a recipient).
"""

import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import HeaderRegistry, MessageIDHeader
from email.message import EmailMessage
from email.utils import format_datetime

from models.escalation import escalation_targets
from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState

__all__ = [
    "REPLY_TYPES",
    "Thread",
    "contact_email",
    "message_id",
    "recipients",
    "reply_email",
    "thread_subject",
]

#: Changes that go to the thread as replies, once it is open.
REPLY_TYPES = frozenset(
    {EventType.ACKNOWLEDGED, EventType.SEVERITY_CHANGED, EventType.REOPENED, EventType.RESOLVED}
)
#: Longest subject sevflow writes (RFC 5322 §2.1.1 asks lines of at most 78 characters; a longer
#: subject is folded, and one this long is still read whole by every client).
SUBJECT_MAX = 200
#: Longest text taken from an alert or a caller into the body.
FIELD_MAX = 2000
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")
#: What ``str.splitlines`` breaks at (the email policy refuses a header holding any: U+2028 in an
#: alert's summary stopped the sink), with the other C0 and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_]")
#: ``In-Reply-To`` and ``References`` hold one msg-id here: parsed and folded as one (the default
#: treats them as free text, and folds a long id into encoded words no client matches).
_HEADERS = HeaderRegistry()
# The registry makes each mapped class a BaseHeader itself, as its own "message-id" entry is.
_HEADERS.map_to_type("in-reply-to", MessageIDHeader)  # type: ignore[arg-type]
_HEADERS.map_to_type("references", MessageIDHeader)  # type: ignore[arg-type]
POLICY = email.policy.SMTP.clone(header_factory=_HEADERS)
_STATUS = {
    IncidentState.TRIGGERED: "Investigating",
    IncidentState.ACKNOWLEDGED: "Acknowledged",
    IncidentState.RESOLVED: "Resolved",
}


@dataclass(frozen=True)
class Thread:
    """An incident's email thread: the opening's Message-ID, subject and who has been emailed."""

    root: str
    subject: str
    recipients: tuple[str, ...]


def recipients(event: IncidentEvent) -> list[str]:
    """The email addresses an ``escalated`` event names, in order, each once. A target that is
    not one plain address (spaces, several addresses, a display name) is left out."""
    if event.type is not EventType.ESCALATED:
        return []
    found: list[str] = []
    for target in escalation_targets(event.data):
        address = target.to.strip()
        if target.kind == "email" and _ADDRESS.match(address) and address not in found:
            found.append(address)
    return found


def message_id(event: IncidentEvent, sender: str) -> str:
    """``<sevflow.<incident>.<event id>@<sender's domain>>``: the same for every attempt."""
    domain = _ID_UNSAFE.sub("-", sender.rpartition("@")[2]) or "sevflow.invalid"
    incident = _ID_UNSAFE.sub("-", event.incident_id)
    return f"<sevflow.{incident}.{event.event_id}@{domain}>"


def _line(text: str, limit: int) -> str:
    """``text`` on one line (control characters → one space), cut visibly at ``limit``."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _quote(text: str, incident_id: str) -> str:
    """``text`` from an alert or a caller on one line (a line break in an impact wrote lines
    of its own, a "Status: resolved" among the facts), cut with a marker at FIELD_MAX."""
    flat = _CONTROL.sub(" ", text).strip()
    if len(flat) <= FIELD_MAX:
        return flat
    return flat[:FIELD_MAX] + f"… (truncated, see `sevflow incidents show {incident_id}`)"


def thread_subject(incident: IncidentSnapshot) -> str:
    """``[SEV1] Security incident: <title> (<id>)``: what the opening email is about."""
    kind = (
        "Data breach"
        if incident.data_breach
        else "Security incident"
        if incident.security
        else "Incident"
    )
    head, tail = f"[{incident.severity}] {kind}: ", f" ({incident.id})"
    # (the title is cut, never the id: a long title took the id off the subject)
    return head + _line(incident.title, SUBJECT_MAX - len(head) - len(tail)) + tail


def _started(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _facts(incident: IncidentSnapshot, channel: str | None) -> list[str]:
    impact = incident.impact or f"{incident.severity.info.description} (impact not yet assessed)"
    return [
        f"Incident: {incident.id}",
        f"Severity: {incident.severity} ({incident.severity.info.description})",
        f"Status: {_STATUS[incident.state]}",
        f"Impact: {_quote(impact, incident.id)}",
        f"Started: {_started(incident.opened_at)}",
        f"Services: {', '.join(incident.services) or 'not named by the alerts'}",
        "Incident channel: "
        + (f"#{channel} (private: ask the incident lead to be added)" if channel else "not open yet"),
        f"Details: sevflow incidents show {incident.id}",
    ]


def _message(
    event: IncidentEvent, sender: str, to: Sequence[str], subject: str, body: list[str]
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = _CONTROL.sub(" ", subject)  # (a thread's subject read back from the log)
    message["Date"] = format_datetime(event.occurred_at.astimezone(UTC))
    message["Message-ID"] = message_id(event, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content("\n".join(body) + "\n")
    return message


def contact_email(
    event: IncidentEvent,
    to: Sequence[str],
    *,
    sender: str,
    channel: str | None,
    thread: Thread | None,
) -> EmailMessage:
    """The email to the contacts an ``escalated`` event names: why they are told, the incident,
    where to follow it. The incident's first email opens its thread; a later one (legal told
    after security) joins it."""
    incident = event.incident
    # Contacts told together with a level (models.escalation) carry their own reason.
    riding = event.data.get("contacts_reason", "")
    why = (
        _quote(_line(riding or event.reason or "", FIELD_MAX), incident.id)
        or "named by the escalation policy"
    )
    named = "" if riding else f" ({event.data.get('level_name', 'escalation')})"
    body = [
        f"{incident.title}",
        "",
        f"Why you are told: {why}{named}",
        "",
        *_facts(incident, channel),
        "",
        "Later changes (acknowledged, resolved with its root cause and fix) follow in this thread.",
        "-- sevflow (automated message)",
    ]
    subject = thread.subject if thread else thread_subject(incident)
    message = _message(event, sender, to, f"Re: {subject}" if thread else subject, body)
    if thread is not None:
        message["In-Reply-To"] = thread.root
        message["References"] = thread.root
    return message


def _change(event: IncidentEvent) -> list[str]:
    incident = event.incident
    who = event.actor.name or event.actor.via
    match event.type:
        case EventType.ACKNOWLEDGED:
            return [f"Acknowledged by {_line(who, 200)} (via {_line(event.actor.via, 50)})."]
        case EventType.SEVERITY_CHANGED:
            before = f"{event.previous_severity} → " if event.previous_severity else ""
            why = f" ({_line(event.reason, 500)})" if event.reason else ""
            return [f"Severity changed: {before}{incident.severity}{why}."]
        case EventType.REOPENED:
            return [f"Reopened: {_line(event.reason or 'an alert fired again', 500)}."]
        case EventType.RESOLVED:
            resolved_at = incident.resolved_at or event.occurred_at

            def recorded(name: str, unknown: str) -> str:
                value = (event.data.get(name) or "").strip()
                return _quote(value, incident.id) if value else unknown

            return [
                f"Resolved at {_started(resolved_at)} by {_line(who, 200)}.",
                "",
                f"Root cause: {recorded('root_cause', 'not recorded yet')}",
                f"Fix: {recorded('fix', 'not recorded yet')}",
                f"Follow-up: {recorded('follow_up', 'none recorded yet')}",
            ]
    return [f"{event.type.value.replace('_', ' ').capitalize()}."]


def reply_email(
    event: IncidentEvent, thread: Thread, *, sender: str, channel: str | None
) -> EmailMessage:
    """A later change of the incident, as a reply in its thread to everyone emailed so far."""
    body = [*_change(event), "", *_facts(event.incident, channel), "", "-- sevflow (automated message)"]
    message = _message(event, sender, thread.recipients, f"Re: {thread.subject}", body)
    message["In-Reply-To"] = thread.root
    message["References"] = thread.root
    return message
