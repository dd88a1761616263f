"""Notices of forced maintenance windows (models/notices.py) → Slack messages. Pure.

Every word an operator chose (the actor's name, the matchers, the comment) and the guard's words
are escaped with :func:`sinks.slack_format.escape` and cut to :data:`sinks.slack_format.FIELD_MAX`,
so a comment or matcher holding ``<!channel>`` shows as written and pings nobody.
"""

from models.notices import WindowNotice
from sinks.limits import clip_mrkdwn
from sinks.slack_format import (
    FIELD_MAX,
    SECTION_TEXT_MAX,
    SlackMessage,
    escape,
    format_started,
)

__all__ = ["window_notice"]


def _quote(text: str, window_id: str) -> str:
    marker = f"… (truncated, see `sevflow maintenance list --all` for {escape(window_id)})"
    return clip_mrkdwn(escape(text), FIELD_MAX, marker)


def window_notice(notice: WindowNotice) -> SlackMessage:
    """The announcement of a forced window's creation, or of its early end."""
    window = _quote(notice.window_id, notice.window_id)
    actor = f"{_quote(notice.actor, notice.window_id)} ({escape(notice.via)})"
    matchers = _quote(", ".join(notice.matchers), notice.window_id)
    period = f"{format_started(notice.starts_at)} to {format_started(notice.ends_at)}"
    if notice.kind == "created":
        head = f":warning: *Forced maintenance window {window}* created by {actor}"
        what = "Alerts it matches page nobody until it ends."
    else:
        head = f":white_check_mark: *Forced maintenance window {window} ended early* by {actor}"
        what = "Alerts it held that still fire are handled now."
    lines = [head, f"*Matchers:* {matchers}", f"*From* {period}"]
    lines += [f"*Forced past:* {_quote(problem, notice.window_id)}" for problem in notice.overridden]
    if notice.comment:
        lines.append(f"*Comment:* “{_quote(notice.comment, notice.window_id)}”")
    lines.append(what)
    text = clip_mrkdwn("\n".join(lines), SECTION_TEXT_MAX)
    return SlackMessage(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
