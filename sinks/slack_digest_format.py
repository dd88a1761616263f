"""The texts of the messages that list incidents in an announcement channel (posted and edited by
:mod:`sinks.slack_digests`): the alert storm's digest of SEV3/SEV4 and the next business day's
morning digest of SEV4. Pure; each listed title is escaped and cut like an update's alert words."""

from collections.abc import Mapping
from datetime import datetime

from sinks.slack_text import LINE_FIELD_MAX, SlackMessage, escape, format_started, quote, single_section

__all__ = ["digest", "morning_digest"]


def _listed(members: Mapping[str, str], shown: int) -> list[str]:
    """A bullet per incident (``id → title``), the first ``shown`` of them, then how many more."""
    lines = [
        f"• {quote(title, incident_id, LINE_FIELD_MAX)} ({incident_id})"
        for incident_id, title in list(members.items())[:shown]
    ]
    if len(members) > shown:
        lines.append(f"• …and {len(members) - shown} more")
    return lines


def digest(members: Mapping[str, str], since: datetime, shown: int = 30) -> SlackMessage:
    """One message for the SEV3/SEV4 incidents opened during an alert storm (``members``: incident
    id → "[SEV3] title")."""
    text = (
        f":cyclone: *ALERT STORM* - {len(members)} SEV3/SEV4 incidents opened since "
        f"{format_started(since)}\n"
        f"They are summarised here; SEV1/SEV2 incidents are still announced one by one.\n"
        + "\n".join(_listed(members, shown))
    )
    return single_section(text)


def morning_digest(day: str, members: Mapping[str, str], shown: int = 30) -> SlackMessage:
    """The next business day's digest in the announcement channel: the incidents that paged nobody
    (the playbook's SEV4, "Next business day") and are still open (``members``: incident id →
    "[SEV4] title")."""
    count = f"{len(members)} incident{'s' if len(members) != 1 else ''}"
    text = (
        f":sunrise: *FOR TODAY* ({escape(day)}) - {count} due by the end of the business day\n"
        f"They paged nobody; acknowledge or resolve each with `sevflow ack|resolve ID`.\n"
        + "\n".join(_listed(members, shown))
    )
    return single_section(text)
