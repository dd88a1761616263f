"""Incident events → Slack messages and channel names, in the playbook's words. Pure.

The texts live one idea to a module; this module names them all, as the Slack sink and the other
formatters import them:

* :mod:`sinks.slack_text`: the message, escaping, fitted quotes, sections, buttons, the
  playbook's times and states (and the rules every text follows: what is escaped, how it is cut);
* :mod:`sinks.slack_announcements`: the channel's name, the announcement, an escalation target's
  notice, the closing message;
* :mod:`sinks.slack_security`: what is posted outside a security incident's private channel;
* :mod:`sinks.slack_updates`: the incident channel's update lines and their coalesced message;
* :mod:`sinks.slack_digest_format`: the storm digest and the morning digest;
* :mod:`sinks.slack_runbook`: the runbook for the incident's channel.
"""

from sinks.slack_announcements import (
    announcement,
    channel_name,
    channel_names,
    escalation_notice,
    resolution,
    unique_channel_name,
)
from sinks.slack_digest_format import digest, morning_digest
from sinks.slack_runbook import RUNBOOK_SECTION_MAX, RUNBOOK_SECTIONS_PER_MESSAGE, runbook_messages
from sinks.slack_security import (
    is_security,
    listed_title,
    private_channel_notice,
    refreshes_announcement,
    security_announcement,
)
from sinks.slack_text import (
    CHANNEL_NAME_MAX,
    FIELD_MAX,
    LINE_FIELD_MAX,
    SECTION_TEXT_MAX,
    SlackMessage,
    escape,
    format_duration,
    format_started,
)
from sinks.slack_updates import EMAIL_QUEUED, NOT_EMAILED, coalesce, update_line

__all__ = [
    "CHANNEL_NAME_MAX",
    "EMAIL_QUEUED",
    "FIELD_MAX",
    "LINE_FIELD_MAX",
    "NOT_EMAILED",
    "RUNBOOK_SECTIONS_PER_MESSAGE",
    "RUNBOOK_SECTION_MAX",
    "SECTION_TEXT_MAX",
    "SlackMessage",
    "announcement",
    "channel_name",
    "channel_names",
    "coalesce",
    "digest",
    "escalation_notice",
    "escape",
    "format_duration",
    "format_started",
    "is_security",
    "listed_title",
    "morning_digest",
    "private_channel_notice",
    "refreshes_announcement",
    "resolution",
    "runbook_messages",
    "security_announcement",
    "unique_channel_name",
    "update_line",
]
