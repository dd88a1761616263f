"""The model-based test's one seam to the code under test: how a batch of records, a timer tick
and an operator's command reach the real pipeline, as the worker's agents and timers do."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from models.alert import RecordPosition
from models.events import Actor, IncidentEvent
from models.incident import Command, Incident
from models.watermark import watermark
from streams.pipeline import Pipeline
from tests.model.world import Offered, World

__all__ = ["System"]


class System:
    """The pipeline over its store, driven like the worker drives it."""

    def __init__(self, pipeline: Pipeline, engine: AsyncEngine) -> None:
        self.pipeline = pipeline
        self.engine = engine

    async def apply(self, batch: Sequence[Offered]) -> list[IncidentEvent]:
        """The alerts agent: one batch, in the order the consumer delivered it."""
        return await self.pipeline.process_alerts(
            [o.record for o in batch], [RecordPosition(o.partition, o.offset) for o in batch]
        )

    async def tick(self, world: World) -> list[IncidentEvent]:
        """The quiet-period and maintenance timers, on the record time a lag measurement taken
        now gives (lag from the committed offsets, as the worker's lag probe reads it)."""
        topic = world.topic
        lag = {p: topic.lag(p) for p in range(len(topic.log))}
        mark = watermark(await self.pipeline.store.partition_progress(), lag, world.now)
        if mark is None:
            return []
        events = await self.pipeline.release_windows(mark)
        events.extend(await self.pipeline.expire_quiet(mark))
        return events

    def command(
        self,
        incident: Incident,
        *,
        command_id: str,
        action: str,
        actor: Actor,
        requested_at: datetime,
    ) -> Command:
        """A command as the API, CLI, Slack or PagerDuty callbacks build it for ``incident``."""
        return Command(
            command_id=command_id,
            action=action,  # type: ignore[arg-type]
            incident_id=incident.id,
            actor=actor,
            requested_at=requested_at,
            episode=incident.flaps,
        )
