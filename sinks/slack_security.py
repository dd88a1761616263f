"""What is posted outside a security or data-breach incident's private channel: its severity and
"security incident", nothing more (the title, impact, labels and channel stay in the private
channel), and where the security contacts are to go. Pure."""

from models.events import IncidentSnapshot, IncidentState
from sinks.slack_text import SlackMessage, section

__all__ = ["is_security", "private_channel_notice", "security_announcement"]


def is_security(incident: IncidentSnapshot) -> bool:
    """A security or data-breach incident: its channel is private, and what is posted outside
    it says only its severity and "security incident"."""
    return incident.security or incident.data_breach


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
