"""Maintenance windows in the store, and the alerts they hold."""

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.incident import AlertState
from models.maintenance import MaintenanceWindow, stored_window
from store.db import reader
from store.incidents import alert_from_row
from store.schema import alerts, maintenance_windows

__all__ = ["MaintenanceStore"]

log = logging.getLogger(__name__)

#: Windows already said to hold nothing (:func:`_warn_unreadable`), by id: said once a process.
_WARNED: set[str] = set()

# Read in every worker transaction: built once (a statement built per call costs more than the
# query on an empty table, its cache key computed again each time).
_OVERLAPPING = select(maintenance_windows.c.document).where(
    maintenance_windows.c.starts_at <= bindparam("end", type_=maintenance_windows.c.starts_at.type),
    maintenance_windows.c.ends_at > bindparam("start", type_=maintenance_windows.c.ends_at.type),
    maintenance_windows.c.released_at.is_(None),
)


class MaintenanceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)

    async def add(self, window: MaintenanceWindow, conn: AsyncConnection | None = None) -> None:
        """Store ``window`` (in ``conn``'s transaction when given, else in its own)."""
        statement = maintenance_windows.insert().values(
            id=window.id,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            document=window.model_dump_json(),
            released_at=None,
        )
        if conn is not None:
            await conn.execute(statement)
            return
        async with self._engine.begin() as own:
            await own.execute(statement)

    async def get(self, window_id: str) -> MaintenanceWindow | None:
        async with self._reader.connect() as conn:
            document = (
                await conn.execute(
                    select(maintenance_windows.c.document).where(maintenance_windows.c.id == window_id)
                )
            ).scalar_one_or_none()
        return stored_window(document) if document else None

    async def overlapping(
        self, start: datetime, end: datetime, conn: AsyncConnection | None = None
    ) -> list[MaintenanceWindow]:
        """Windows active at some moment of [start, end] and not released yet (read in ``conn``
        when given).

        A released window holds nothing more: its release ran once record time had passed its
        end, so a record stamped before the end that is applied only after the release (a
        receiver whose clock runs behind, a late retry) is handled normally, not held for a
        release that will never come again."""
        bounds = {"start": start, "end": end}
        if conn is None:
            async with self._reader.connect() as own:
                documents = (await own.execute(_OVERLAPPING, bounds)).scalars().all()
        else:
            documents = (await conn.execute(_OVERLAPPING, bounds)).scalars().all()
        windows = [stored_window(d) for d in documents]
        for window in windows:
            _warn_unreadable(window)
        return windows

    async def listing(self, *, since: datetime | None = None) -> list[MaintenanceWindow]:
        """Windows ending after ``since`` (all when None), by start."""
        query = select(maintenance_windows.c.document).order_by(maintenance_windows.c.starts_at)
        if since is not None:
            query = query.where(maintenance_windows.c.ends_at > since)
        async with self._reader.connect() as conn:
            documents = (await conn.execute(query)).scalars().all()
        return [stored_window(d) for d in documents]

    async def end(
        self, window_id: str, at: datetime, conn: AsyncConnection | None = None
    ) -> tuple[MaintenanceWindow, bool] | None:
        """End a window now (or keep its end if that is earlier): the window and whether it was
        shortened; None when unknown. Read and written in ``conn``'s transaction when given."""
        if conn is None:
            async with self._engine.begin() as own:
                return await self.end(window_id, at, own)
        document = (
            await conn.execute(
                select(maintenance_windows.c.document).where(maintenance_windows.c.id == window_id)
            )
        ).scalar_one_or_none()
        if document is None:
            return None
        window = stored_window(document)
        if window.ends_at <= at:
            return window, False
        window = window.model_copy(update={"ends_at": max(at, window.starts_at)})
        await conn.execute(
            update(maintenance_windows)
            .where(maintenance_windows.c.id == window_id)
            .values(ends_at=window.ends_at, document=window.model_dump_json())
        )
        return window, True

    async def due(self, now: datetime) -> list[str]:
        """Ended windows whose held alerts have not been released yet: not released, or released
        while a batch held one more alert (a record stamped before the end, applied between the
        release's reading of the held alerts and its mark, by a receiver whose clock ran behind),
        which no release would take otherwise."""
        still_holding = (
            select(alerts.c.fingerprint)
            .where(
                and_(
                    alerts.c.suppressed_by == maintenance_windows.c.id,
                    alerts.c.status == "firing",
                )
            )
            .exists()
        )
        query = select(maintenance_windows.c.id).where(
            and_(
                maintenance_windows.c.ends_at <= now,
                or_(maintenance_windows.c.released_at.is_(None), still_holding),
            )
        )
        async with self._reader.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def held(self, window_id: str) -> Sequence[AlertState]:
        """The alerts a window holds that are still firing."""
        query = select(alerts).where(
            and_(alerts.c.suppressed_by == window_id, alerts.c.status == "firing")
        )
        async with self._reader.connect() as conn:
            return [alert_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def mark_released(self, window_id: str, at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(maintenance_windows)
                .where(maintenance_windows.c.id == window_id)
                .values(released_at=at)
            )


def _warn_unreadable(window: MaintenanceWindow) -> None:
    """Say once, as an error, that an active window holds nothing since a matcher no longer reads
    (models.maintenance.stored_window): its alerts page as if it did not exist."""
    if window.id in _WARNED:
        return
    problems = window.unreadable()
    if problems:
        _WARNED.add(window.id)
        log.error(
            "maintenance window %s holds nothing: %s; its alerts are handled as if it did not "
            "exist (end it with `sevflow maintenance end %s` and add it again with RE2 matchers)",
            window.id,
            "; ".join(problems),
            window.id,
        )
