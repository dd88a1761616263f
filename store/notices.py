"""The notices outbox: forced maintenance windows to announce (models/notices.py).

A notice row is written in the transaction that stores (or ends) its window and writes the audit
record (:func:`add`), so a forced window is never without its notice nor a notice without its
window. The Slack sink's process reads the pending ones (:meth:`NoticeStore.pending`), posts
each once under its delivery log, then marks it (:meth:`NoticeStore.mark`).
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, Column, Index, String, Table, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.notices import NOTICE_ID_MAX, NoticeKind, NoticeStatus, WindowNotice, notice_id
from store.chunking import chunks
from store.db import reader
from store.schema import UTCDateTime, metadata

__all__ = ["NoticeStore", "add", "find", "notices"]

notices = Table(
    "notices",
    metadata,
    Column("id", String(NOTICE_ID_MAX), primary_key=True),
    Column("window_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("document", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("announced_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_notices_status_created", "status", "created_at"),
    Index("ix_notices_window", "window_id"),
)


async def add(conn: AsyncConnection, notice: WindowNotice) -> None:
    """Write ``notice`` as pending in ``conn``'s transaction (nothing when its id exists)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(notices).values(
        id=notice.id,
        window_id=notice.window_id,
        kind=notice.kind,
        created_at=notice.at,
        document=notice.model_dump(mode="json"),
        status="pending",
    )
    await conn.execute(statement.on_conflict_do_nothing())


async def find(conn: AsyncConnection, window_id: str, kind: NoticeKind) -> WindowNotice | None:
    """The ``kind`` notice of a window, read in ``conn``."""
    document = (
        await conn.execute(select(notices.c.document).where(notices.c.id == notice_id(window_id, kind)))
    ).scalar_one_or_none()
    return WindowNotice.model_validate(document) if document is not None else None


class NoticeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)

    async def pending(self, limit: int = 100) -> list[WindowNotice]:
        """Notices not announced yet, oldest first."""
        query = (
            select(notices.c.document)
            .where(notices.c.status == "pending")
            .order_by(notices.c.created_at, notices.c.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            documents = (await conn.execute(query)).scalars().all()
        return [WindowNotice.model_validate(d) for d in documents]

    async def mark(
        self, notice: str, status: NoticeStatus, at: datetime, reason: str | None = None
    ) -> None:
        """Record that ``notice`` was announced (or failed for good, with ``reason``)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(notices)
                .where(notices.c.id == notice)
                .values(status=status, announced_at=at, reason=reason)
            )

    async def states(self, window_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Each window's notices as ``(kind, status)``, oldest first (windows without any are
        left out)."""
        found: dict[str, list[tuple[str, str]]] = {}
        async with self._reader.connect() as conn:
            for chunk in chunks(sorted(set(window_ids))):
                query = (
                    select(notices.c.window_id, notices.c.kind, notices.c.status)
                    .where(notices.c.window_id.in_(chunk))
                    .order_by(notices.c.created_at, notices.c.id)
                )
                for row in await conn.execute(query):
                    found.setdefault(row.window_id, []).append((row.kind, row.status))
        return found
