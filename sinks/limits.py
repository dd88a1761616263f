"""The vendors' size limits, each with the document that sets it, and the one way sevflow shortens
text to fit them: visibly (a marker says it was cut and where the whole is), at a boundary the
vendor's unit cannot split. Pure.

A call that is too large is refused by the vendor for good (PagerDuty 400, Slack
``msg_too_long`` / ``invalid_blocks``, Statuspage 422): dead-lettering it would page nobody for a
SEV1 whose labels are large. So every formatter fits its call to these limits before it is sent.

Characters are counted in UTF-16 code units (what JavaScript's ``length`` counts; an emoji is
two): never fewer than the code points Python counts, so a text that fits here fits a vendor that
counts either. Text is cut between code points, so never inside a surrogate pair.
"""

from models.pagerduty_keys import DEDUP_KEY_MAX

__all__ = [
    "PAGERDUTY_DEDUP_KEY_MAX",
    "PAGERDUTY_EVENT_MAX_BYTES",
    "PAGERDUTY_FIELD_MAX",
    "PAGERDUTY_LINK_HREF_MAX",
    "PAGERDUTY_SUMMARY_MAX",
    "SLACK_BLOCKS_MAX",
    "SLACK_BUTTON_TEXT_MAX",
    "SLACK_CHANNEL_NAME_MAX",
    "SLACK_CONTEXT_ELEMENTS_MAX",
    "SLACK_HEADER_TEXT_MAX",
    "SLACK_SECTION_TEXT_MAX",
    "SLACK_TEXT_MAX",
    "STATUSPAGE_BODY_MAX",
    "STATUSPAGE_NAME_MAX",
    "TRUNCATED",
    "clip",
    "clip_mrkdwn",
    "text_length",
]

# --- PagerDuty Events API v2 -------------------------------------------------------------------
#: "512 KB" per event, the whole JSON body: https://developer.pagerduty.com/docs/events-api-v2-overview
#: (PagerDuty/developer-docs docs/events-API-v2/01-Overview.md). Read as 512,000 bytes, the
#: stricter of the two readings of "KB".
PAGERDUTY_EVENT_MAX_BYTES = 512_000
#: ``payload.summary`` "Maximum of 1024 characters":
#: https://developer.pagerduty.com/docs/send-alert-event (docs/events-API-v2/02-Trigger-Events.md).
PAGERDUTY_SUMMARY_MAX = 1024
#: ``dedup_key`` "Maximum of 255 characters": the same page (kept with the key forms, in
#: models/pagerduty_keys.py).
PAGERDUTY_DEDUP_KEY_MAX = DEDUP_KEY_MAX
#: ``source``, ``component``, ``group``, ``class``: PagerDuty documents no limit; sevflow keeps
#: each to a summary's length, so that the event's fixed part stays small beside 512 KB.
PAGERDUTY_FIELD_MAX = 1024
#: A ``links[].href`` longer than this is left out (sevflow's bound, not PagerDuty's: a URL that
#: long is a label copied into an annotation, not a link anyone follows).
PAGERDUTY_LINK_HREF_MAX = 2048

# --- Slack Web API and Block Kit ----------------------------------------------------------------
#: chat.postMessage / chat.update ``text``: "truncate messages containing more than 40,000
#: characters" (https://api.slack.com/changelog/2018-04-truncating-really-long-messages,
#: https://docs.slack.dev/reference/methods/chat.postMessage); chat.update answers ``msg_too_long``.
SLACK_TEXT_MAX = 40_000
#: Blocks per message: 50 (https://docs.slack.dev/reference/block-kit/blocks).
SLACK_BLOCKS_MAX = 50
#: A section block's ``text``: 3,000 (https://docs.slack.dev/reference/block-kit/blocks/section-block).
SLACK_SECTION_TEXT_MAX = 3000
#: A header block's ``text``: 150 (https://docs.slack.dev/reference/block-kit/blocks/header-block).
SLACK_HEADER_TEXT_MAX = 150
#: A context block's ``elements``: 10 (https://docs.slack.dev/reference/block-kit/blocks/context-block).
SLACK_CONTEXT_ELEMENTS_MAX = 10
#: A button's ``text``: 75 (https://docs.slack.dev/reference/block-kit/block-elements/button-element).
SLACK_BUTTON_TEXT_MAX = 75
#: conversations.create ``name``: "80 characters or less"
#: (https://docs.slack.dev/reference/methods/conversations.create).
SLACK_CHANNEL_NAME_MAX = 80

# --- Atlassian Statuspage Manage API v1 ---------------------------------------------------------
#: ``incident[name]`` ≤ 255 and ``incident[body]`` ≤ 25,000 characters
#: (https://developer.statuspage.io/#operation/postPagesPageIdIncidents).
STATUSPAGE_NAME_MAX = 255
STATUSPAGE_BODY_MAX = 25_000

#: What a shortened text ends with, unless the caller names where the whole text is.
TRUNCATED = "… (truncated)"


def text_length(text: str) -> int:
    """``text``'s length in UTF-16 code units (≥ its code points)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _prefix(text: str, budget: int) -> str:
    """The longest prefix of ``text`` (whole code points) of at most ``budget`` UTF-16 units."""
    cut = text[:budget]
    while (excess := text_length(cut) - budget) > 0:
        cut = cut[: len(cut) - (excess + 1) // 2]
    return cut


def clip(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """``text`` if it fits in ``limit`` units, else its beginning followed by ``marker``, the
    whole no longer than ``limit``."""
    if text_length(text) <= limit:
        return text
    budget = limit - text_length(marker)
    if budget < 0:
        return _prefix(marker, limit)
    return _prefix(text, budget) + marker


def clip_mrkdwn(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """:func:`clip` for Slack mrkdwn: never ends inside an escape (``&amp;``) or a markup span
    (``<@U…>``, ``<!subteam^…>``, ``<https://…|…>``), which Slack would show broken or refuse.

    sevflow escapes every ``&``, ``<`` and ``>`` it did not write itself, so each ``&`` starts an
    escape and each ``<`` a span of its own markup."""
    if text_length(text) <= limit:
        return text
    budget = limit - text_length(marker)
    if budget < 0:
        return _prefix(marker, limit)
    cut = _prefix(text, budget)
    while True:
        amp, lt = cut.rfind("&"), cut.rfind("<")
        if amp > cut.rfind(";"):
            cut = cut[:amp]
        elif lt > cut.rfind(">"):
            cut = cut[:lt]
        else:
            return cut + marker
