"""What Slack refuses in a message, as the fake Slack (testkit/fakes/slack.py) enforces it.

Sizes as Slack documents them, counted in UTF-16 units (what Slack's JavaScript counts, an emoji
is two): ``text`` over 40,000 → ``msg_too_long``; more than 50 blocks, a section text over 3,000
(its fields: 10 of 2,000), a header over 150, a context block of more than 10 elements (each
text 3,000), more than 25 actions, a button text over 75 or a block / action id over 255 →
``invalid_blocks``. Channel names: lower-case letters, digits, ``-`` and ``_``.
"""

import re
from typing import Any

__all__ = ["NAME", "TEXT_MAX", "block_problem", "message_problem"]

NAME = re.compile(r"^[a-z0-9_-]+$")
TEXT_MAX = 40_000


def _length(text: Any) -> int:
    return len(str(text).encode("utf-16-le", "surrogatepass")) // 2


def _text(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def block_problem(block: Any) -> str | None:
    """Why Slack refuses ``block`` (Block Kit reference), or None."""
    if not isinstance(block, dict):
        return "block is not an object"
    kind = block.get("type")
    if _length(block.get("block_id", "")) > 255:
        return "block_id over 255"
    if kind == "section":
        if _length(_text(block.get("text"))) > 3000:
            return "section text over 3000"
        fields = block.get("fields") or []
        if len(fields) > 10 or any(_length(_text(f)) > 2000 for f in fields):
            return "section fields over 10 or over 2000"
    elif kind == "header":
        if _length(_text(block.get("text"))) > 150:
            return "header text over 150"
    elif kind == "context":
        elements = block.get("elements") or []
        if len(elements) > 10 or any(_length(_text(e)) > 3000 for e in elements):
            return "context over 10 elements or 3000"
    elif kind == "actions":
        elements = block.get("elements") or []
        if len(elements) > 25:
            return "actions over 25 elements"
        for element in elements:
            if _length(_text(element.get("text"))) > 75 or _length(element.get("action_id", "")) > 255:
                return "button text over 75 or action_id over 255"
    return None


def message_problem(args: dict[str, Any], blocks: Any) -> str | None:
    """The error code Slack answers a message's ``text`` / ``blocks`` with, or None."""
    if _length(args.get("text", "")) > TEXT_MAX:
        return "msg_too_long"
    if blocks is not None:
        if not isinstance(blocks, list) or len(blocks) > 50:
            return "invalid_blocks"
        if any(block_problem(block) for block in blocks):
            return "invalid_blocks"
    return None
