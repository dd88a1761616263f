"""Manual commands (acknowledge, resolve, publish, escalate) and how they change an incident."""

import unicodedata
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.alert import RecordTime
from models.events import Actor, EventType, IncidentState
from models.incident.recorder import Outcome, Recorder
from models.incident.state import Incident

__all__ = [
    "COMMAND_ID_MAX",
    "COMMAND_SCHEMA_VERSION",
    "INCIDENT_ID_MAX",
    "PUBLIC_BODY_MAX",
    "PUBLIC_TITLE_MAX",
    "RESOLUTION_DETAILS",
    "RESOLUTION_DETAIL_MAX",
    "Command",
    "apply_command",
    "public_words_problem",
    "refusal",
]

#: Version of the commands topic's records; changes only when a reader would have to behave
#: differently (fields are only ever added). Commands written before it existed are version 1.
COMMAND_SCHEMA_VERSION = 1

#: What a resolution may record, in the playbook's "Close Incident" message (its event's data).
RESOLUTION_DETAILS = ("root_cause", "fix", "follow_up")
RESOLUTION_DETAIL_MAX = 1000
#: The longest public title and text an operator may publish (Statuspage's incident name is 255
#: characters; its body 25,000: sevflow keeps a published text to what a reader reads).
PUBLIC_TITLE_MAX = 255
PUBLIC_BODY_MAX = 5000


def public_words_problem(title: str, body: str) -> str | None:
    """What an operator's public title and text must not hold, named; None when they are fit.
    Control characters (U+0000 above all, which PostgreSQL cannot store) reached the public
    page as written; a title is one line, a text may have line breaks and tabs."""
    for what, text, allowed in (("title", title, ""), ("body", body, "\n\r\t")):
        bad = next((c for c in text if unicodedata.category(c) == "Cc" and c not in allowed), None)
        if bad is not None:
            return f"{what}: must not hold the control character U+{ord(bad):04X}"
    return None


#: The longest command id and incident id the incident store holds (``commands`` table); the
#: receiver and the CLI build ids well within them, so only a foreign producer's record exceeds them.
COMMAND_ID_MAX = 128
INCIDENT_ID_MAX = 64


class Command(BaseModel):
    """A manual change requested through the API, the CLI, Slack or PagerDuty.

    A resolution may say what the playbook's closing message asks for — root cause, fix,
    follow-up — which the ``resolved`` event carries in its ``data``.

    This is a wire format other processes read (the commands topic): fields are only ever added,
    and ``schema_version`` changes when a reader would have to behave differently."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    schema_version: int = COMMAND_SCHEMA_VERSION
    command_id: str = Field(
        min_length=1, max_length=COMMAND_ID_MAX, description="Idempotency key of the request."
    )
    action: Literal["acknowledge", "resolve", "publish", "escalate", "note"]
    incident_id: str = Field(min_length=1, max_length=INCIDENT_ID_MAX)
    actor: Actor
    requested_at: RecordTime
    root_cause: str | None = Field(default=None, max_length=RESOLUTION_DETAIL_MAX)
    fix: str | None = Field(default=None, max_length=RESOLUTION_DETAIL_MAX)
    follow_up: str | None = Field(default=None, max_length=RESOLUTION_DETAIL_MAX)
    pagerduty_alert: str | None = Field(
        default=None,
        max_length=255,
        description="From PagerDuty: the dedup_key of the alert acted on there (the incident's own "
        "or an escalation level's page), which the ``acknowledged`` event carries in its data.",
    )
    public_title: str | None = Field(
        default=None,
        max_length=PUBLIC_TITLE_MAX,
        description="For publish: the public status page's title, as the operator wrote it.",
    )
    public_body: str | None = Field(
        default=None,
        max_length=PUBLIC_BODY_MAX,
        description="For publish: the public status page's text, as the operator wrote it.",
    )
    episode: int | None = Field(
        default=None,
        ge=0,
        description="The episode of the incident the command was issued for: its ``flaps`` as the "
        "caller read it (0 until it first reopens). A command for another episode is refused "
        "(:func:`refusal`); None: not known, then ``requested_at`` is compared with "
        "``reopened_at``.",
    )

    text: str | None = Field(
        default=None,
        max_length=2000,
        description="For note: the note's text (models/timeline_notes.py); only with note.",
    )
    to: Literal["manager"] | None = Field(
        default=None,
        description="Whom an ``escalate`` command escalates to (the playbook's manual escalation "
        "to the engineering manager); only with ``escalate``.",
    )

    @model_validator(mode="after")
    def _details_resolve(self) -> "Command":
        if self.action != "resolve" and any(getattr(self, k) for k in RESOLUTION_DETAILS):
            raise ValueError("root_cause, fix and follow_up belong to a resolution")
        publishing = self.action == "publish"
        if publishing != bool(self.public_title and self.public_title.strip()) or publishing != bool(
            self.public_body and self.public_body.strip()
        ):
            raise ValueError("publish, and only publish, takes a public_title and a public_body")
        if (self.action == "escalate") != (self.to is not None):
            raise ValueError("'to' is given with an escalate command, and only with one")
        if (self.action == "note") != bool(self.text and self.text.strip()):
            raise ValueError("'text' is given with a note command, and only with one")
        return self

    def details(self) -> dict[str, str]:
        """The resolution details given (blank ones left out)."""
        return {k: v.strip() for k in RESOLUTION_DETAILS if (v := getattr(self, k)) and v.strip()}


def refusal(incident: Incident, command: Command) -> str | None:
    """Why ``command`` must not apply to ``incident``, if it must not.

    Commands and alerts arrive on separate topics: a command issued before the incident
    reopened (an acknowledgement or resolution of the previous episode, applied late) would
    otherwise silence a flap nobody has seen. The episode the caller read (``command.episode``)
    decides, without comparing host clocks; only a command that does not name its episode falls
    back to comparing its ``requested_at`` with ``reopened_at``. Publishing is never refused:
    the operator's public words hold for whichever episode the incident is in.
    """
    if command.action == "publish":
        return None
    if command.episode is not None:
        if command.episode < incident.flaps:
            return (
                f"issued for episode {command.episode}; the incident reopened since "
                f"(episode {incident.flaps})"
            )
        if command.episode > incident.flaps:  # (episodes only grow: read elsewhere, or made up)
            return (
                f"issued for episode {command.episode}, which the incident has not reached "
                f"(episode {incident.flaps})"
            )
        return None
    if incident.reopened_at is not None and command.requested_at < incident.reopened_at:
        return f"requested before the incident reopened at {incident.reopened_at.isoformat()}"
    return None


def _publish(incident: Incident, command: Command, rec: Recorder) -> Outcome | None:
    """Put the incident on the public status page with the operator's words (a held security
    incident's only way there); publishing the same words again changes nothing, new words
    are a new public update."""
    title, body = (command.public_title or "").strip(), (command.public_body or "").strip()
    if (incident.status_page_title, incident.status_page_body) == (title, body):
        return None
    incident = incident.model_copy(
        update={
            "status_page_title": title,
            "status_page_body": body,
            "status_page_published_at": incident.status_page_published_at or rec.now,
            "status_page_published_by": incident.status_page_published_by or command.actor,
        }
    )
    incident = rec.emit(
        incident,
        EventType.STATUSPAGE_PUBLISHED,
        command.actor,
        reason="published on the status page by hand",
        data={"title": title, "body": body},
    )
    return Outcome(incident, None, rec.events)


def apply_command(incident: Incident, command: Command, now: datetime) -> Outcome | None:
    """Acknowledge, resolve or publish by hand; None when the incident is already in that state
    (published with these words) or the command is refused (:func:`refusal`). An ``escalate``
    command is not a change of state: :func:`models.escalation.escalate_by_hand` applies it."""
    if refusal(incident, command) is not None or command.action in ("escalate", "note"):
        return None  # (a note: models/timeline_notes.py add_note)
    rec = Recorder(now)
    if command.action == "publish":
        return _publish(incident, command, rec)
    if command.action == "acknowledge":
        if incident.state is not IncidentState.TRIGGERED:
            return None
        incident = incident.model_copy(
            update={
                "state": IncidentState.ACKNOWLEDGED,
                "acknowledged_at": now,
                "acknowledged_by": command.actor,
            }
        )
        data = {"pagerduty_alert": command.pagerduty_alert} if command.pagerduty_alert else None
        incident = rec.emit(incident, EventType.ACKNOWLEDGED, command.actor, data=data)
    else:
        if incident.state is IncidentState.RESOLVED:
            return None
        incident = incident.model_copy(
            update={
                "state": IncidentState.RESOLVED,
                "resolved_at": now,
                "resolved_by": command.actor,
                "quiet_since": None,
                "monitoring": False,
                "verified_at": None,
            }
        )
        incident = rec.emit(
            incident,
            EventType.RESOLVED,
            command.actor,
            reason="resolved by hand",
            data=command.details() or None,
        )
    return Outcome(incident, None, rec.events)
