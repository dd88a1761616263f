"""The dangerous operations, once, for the CLI and the admin API: maintenance windows and replays
of dead letters and quarantined records, each recorded in the audit log (store/audit.py) with who
did it.

The CLI calls these with the login name as the actor; the admin API (sevflow/admin_api.py) with
the token's name. A maintenance window that matches every alert or lasts over
``SEVFLOW_MAINTENANCE_MAX_HOURS`` is refused with :class:`NeedsForce` unless ``force`` is given
(models/maintenance.py ``guard_problems``); a forced window leaves a notice that the Slack sink's
process posts in the announcement channel (sinks/notices.py), and so does ending it early.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from models.audit import AuditEntry
from models.maintenance import MaintenanceWindow, guard_problems
from models.notes import clean_note
from models.notices import NoticeKind, WindowNotice, notice_id
from models.settings import Settings
from sinks.dlq import Replayed, dlq_replay_async
from store import notices
from store.audit import record
from store.maintenance import MaintenanceStore
from streams.quarantine import quarantine_replay_async

__all__ = [
    "NeedsForce",
    "Who",
    "create_window",
    "end_window",
    "new_window",
    "replay_dead_letters",
    "replay_quarantined",
    "window_json",
]


@dataclass(frozen=True)
class Who:
    """Who acts and through what (``api``: a token's name; ``cli``: the login name), and the
    caller's own free-text note."""

    name: str
    via: str
    note: str | None = None

    def entry(
        self, action: str, target: str | None, details: dict[str, Any], now: datetime
    ) -> AuditEntry:
        """The audit log's entry of ``action`` on ``target``, done by this actor at ``now``."""
        return AuditEntry(
            at=now,
            action=action,
            actor=self.name,
            via=self.via,
            target=target,
            details=details,
            note=self.note,
        )


class NeedsForce(ValueError):
    """The window matches every alert or is too long; ``problems`` says which."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems) + ' (use --force / "force": true if you mean it)')
        self.problems = list(problems)


#: The longest window comment kept (a note's length).
COMMENT_MAX = 2000


def new_window(
    matchers: Sequence[str], starts_at: datetime, ends_at: datetime, comment: str, who: Who
) -> MaintenanceWindow:
    """A window with a fresh id (raises ValueError / ValidationError for bad matchers or times)."""
    return MaintenanceWindow(
        id="mw_" + uuid.uuid4().hex[:12],
        matchers=tuple(matchers),
        starts_at=starts_at,
        ends_at=ends_at,
        # one printable line, as a note: a comment of escape sequences and line breaks broke the
        # listing's table and wrote to the operator's terminal
        comment=clean_note(comment, COMMENT_MAX) or "",
        created_by=who.name,
    )


def window_json(window: MaintenanceWindow, now: datetime) -> dict[str, Any]:
    state = (
        "active"
        if window.starts_at <= now < window.ends_at
        else ("ended" if window.ends_at <= now else "planned")
    )
    unreadable = window.unreadable()
    return (
        window.model_dump(mode="json")
        | {"state": state}
        | ({"unreadable": unreadable} if unreadable else {})
    )


async def create_window(
    engine: AsyncEngine,
    window: MaintenanceWindow,
    *,
    force: bool,
    max_hours: float,
    who: Who,
    now: datetime,
) -> list[str]:
    """Store ``window`` and record it; returns the guard's problems that ``force`` overrode. A
    forced window is stored with its audit record and its ``created`` notice (store/notices.py)
    in one transaction. Raises :class:`NeedsForce` without ``force``."""
    problems = guard_problems(window, max_hours)
    if problems and not force:
        raise NeedsForce(problems)
    hours = (window.ends_at - window.starts_at).total_seconds() / 3600
    entry = who.entry(
        "maintenance.created",
        window.id,
        {
            "matchers": list(window.matchers),
            "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat(),
            "hours": round(hours, 3),
            "comment": window.comment,
            "forced": problems,
        },
        now,
    )
    async with engine.begin() as conn:
        await MaintenanceStore(engine).add(window, conn)
        await record(conn, entry)
        if problems:
            await notices.add(conn, _notice(window, "created", problems, who, now))
    return problems


async def end_window(
    engine: AsyncEngine, window_id: str, *, who: Who, now: datetime
) -> MaintenanceWindow | None:
    """End a window now and record it; None when there is no such window. A forced window
    (one with a ``created`` notice) that this ends early gets an ``ended`` notice, in the same
    transaction."""
    async with engine.begin() as conn:
        found = await MaintenanceStore(engine).end(window_id, now, conn)
        if found is None:
            return None
        ended, shortened = found
        await record(
            conn,
            who.entry(
                "maintenance.ended",
                window_id,
                {"matchers": list(ended.matchers), "ends_at": ended.ends_at.isoformat()},
                now,
            ),
        )
        created = await notices.find(conn, window_id, "created") if shortened else None
        if created is not None:
            await notices.add(conn, _notice(ended, "ended", created.overridden, who, now))
    return ended


def _notice(
    window: MaintenanceWindow, kind: NoticeKind, overridden: Sequence[str], who: Who, now: datetime
) -> WindowNotice:
    return WindowNotice(
        id=notice_id(window.id, kind),
        kind=kind,
        window_id=window.id,
        at=now,
        actor=who.name,
        via=who.via,
        matchers=window.matchers,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        overridden=tuple(overridden),
        comment=window.comment,
    )


async def replay_dead_letters(
    settings: Settings,
    engine: AsyncEngine,
    *,
    sink: str | None,
    event_ids: Collection[str] | None,
    who: Who,
    now: datetime,
) -> Replayed:
    """:func:`sinks.dlq.dlq_replay_async`, recorded."""
    replayed = await dlq_replay_async(settings, sink=sink, event_ids=event_ids)
    await record(
        engine,
        who.entry(
            "dlq.replayed",
            sink,
            {
                "sink": sink,
                "events": sorted(event_ids) if event_ids else None,
                "letters": replayed.letters,
                "later": replayed.later,
            },
            now,
        ),
    )
    return replayed


async def replay_quarantined(
    settings: Settings,
    engine: AsyncEngine,
    *,
    source: str | None,
    positions: Collection[str] | None,
    who: Who,
    now: datetime,
) -> int:
    """:func:`streams.quarantine.quarantine_replay_async`, recorded."""
    sent = await quarantine_replay_async(settings, source=source, offsets=positions)
    await record(
        engine,
        who.entry(
            "quarantine.replayed",
            source,
            {
                "source": source,
                "positions": sorted(positions) if positions else None,
                "records": sent,
            },
            now,
        ),
    )
    return sent
