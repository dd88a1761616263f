"""What is posted outside a security or data-breach incident's private channel: its severity and
"security incident", nothing more (the title, impact, labels and channel stay in the private
channel), and where the security contacts are to go. Pure."""

from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState
from sinks.slack_text import SlackMessage, section

__all__ = [
    "is_security",
    "listed_title",
    "private_channel_notice",
    "refreshes_announcement",
    "security_announcement",
]


def is_security(incident: IncidentSnapshot) -> bool:
    """A security or data-breach incident: its channel is private, and what is posted outside
    it says only its severity and "security incident"."""
    return incident.security or incident.data_breach


def listed_title(incident: IncidentSnapshot) -> str:
    """What a listing in an announcement channel (a storm's digest, the morning digest) shows of
    an incident: its title, or "security incident"."""
    return "security incident" if is_security(incident) else incident.title


#: The changes that edit an incident's #incidents announcement to its current state.
_REFRESH = (EventType.ACKNOWLEDGED, EventType.SEVERITY_CHANGED, EventType.REOPENED, EventType.RESOLVED)


def refreshes_announcement(event: IncidentEvent) -> bool:
    """Whether ``event`` edits the incident's #incidents announcement: a change of its state, or
    an alert that made it a security incident (the announcement then turns neutral; an alert
    that does not change the severity edited nothing, and the title stayed)."""
    return event.type in _REFRESH or (
        event.type is EventType.ALERT_ADDED and is_security(event.incident)
    )


def security_announcement(incident: IncidentSnapshot) -> SlackMessage:
    """What ``#incidents`` learns of a security incident: its severity and that it is one; no
    title, impact, labels or channel (those are in the private channel)."""
    state = " (resolved)" if incident.state is IncidentState.RESOLVED else ""
    text = f":lock: *INCIDENT* - [{incident.severity}] - security incident{state}"
    return SlackMessage(text, [section(text)])


def private_channel_notice(incident: IncidentSnapshot, channel: str, invited: int) -> SlackMessage:
    """What the security contact's channel (``#security-incidents``) learns: where to go."""
    text = (
        f":lock: *[{incident.severity}] security incident*: private channel #{channel} "
        f"({invited} security contact{'s' if invited != 1 else ''} invited; ask there to join)"
    )
    return SlackMessage(text, [section(text)])
