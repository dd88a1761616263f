"""The outbox's backlog: the incident events stored and not yet published.

Events are written to ``incident_events`` by :class:`store.incidents.IncidentTx`, in the same
transaction as the change they describe. The relay reads the unpublished ones and marks them
published through the database's driver, in a process of its own (store/driver_outbox.py); the
worker's metrics count the backlog here.
"""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.schema import incident_events

__all__ = ["Outbox"]


class Outbox:
    """The worker's view of the ``incident_events`` outbox."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def backlog(self) -> int:
        """How many stored events are not yet published."""
        query = (
            select(func.count())
            .select_from(incident_events)
            .where(incident_events.c.published_at.is_(None))
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
