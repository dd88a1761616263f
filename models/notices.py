"""Notices: what operators are told in the announcement channel about a forced maintenance window.

A window that matches every alert or lasts over the allowed maximum needs ``--force``
(models/maintenance.py ``guard_problems``); creating such a window, and ending it early, each
leave one notice, written with the window and its audit record in one transaction (store/notices.py)
and posted once by the Slack sink's process (sinks/notices.py). Pure data.
"""

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NOTICE_ID_MAX", "NoticeKind", "NoticeStatus", "WindowNotice", "notice_id"]

NoticeKind = Literal["created", "ended"]
#: ``pending`` until posted, then ``announced``; ``failed`` when Slack refused it for good.
NoticeStatus = Literal["pending", "announced", "failed"]
#: The delivery log's event id holds 64 characters (store/sinks_schema.py).
NOTICE_ID_MAX = 64


def notice_id(window_id: str, kind: NoticeKind) -> str:
    """``<window id>:<kind>``; a window id too long for that is replaced by a hash of it."""
    readable = f"{window_id}:{kind}"
    if len(readable) <= NOTICE_ID_MAX:
        return readable
    return f"{hashlib.sha256(window_id.encode()).hexdigest()[:32]}:{kind}"


class WindowNotice(BaseModel):
    """The facts of one notice: who did what to which window, and what ``--force`` overrode."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(max_length=NOTICE_ID_MAX)
    kind: NoticeKind
    window_id: str
    at: datetime
    actor: str
    via: str
    matchers: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    overridden: tuple[str, ...] = ()
    comment: str = ""
