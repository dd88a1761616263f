"""A lane that fails in a way no sink expected dead-letters its events; the sink goes on.

Before, the exception ended the sink's worker and the sinks process (``sevflow run`` with it);
restarted, it met the same event again, so one event no sink could handle stopped every page."""

from collections.abc import Sequence
from datetime import datetime

import pytest
from sqlalchemy.exc import DataError, ProgrammingError

from models.events import IncidentEvent
from sinks.base import Failure
from sinks.errors import SinkStopped
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import records, worker_for

clock = fixtures.clock


class Picky:
    """A sink that fails, as no sink expects, on the incidents of service ``bad``."""

    name = "picky"

    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.delivered: list[IncidentEvent] = []

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        return None

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        for event in events:
            if "bad" in event.incident.services:
                raise self.failure
            self.delivered.append(event)
        return []

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        return []

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "failure",
    [ValueError("no such thing"), DataError("INSERT", {}, Exception("value too long"))],
    ids=["a bug", "a value the store refuses"],
)
async def test_an_unexpected_failure_dead_letters_that_incident_and_the_others_are_delivered(
    clock: FakeClock, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    good = IncidentStory(name="ApiDown", service="api")
    bad = IncidentStory(name="BadDown", service="bad")
    later = IncidentStory(name="DbDown", service="db")
    events = [*good.fire(), *bad.fire(), *bad.ack(), *later.fire()]
    sink = Picky(failure)
    worker, dead = worker_for(sink, clock)  # type: ignore[arg-type]
    await worker.process(records(events))
    assert [e.incident.services for e in sink.delivered] == [["api"], ["db"]]
    assert [(letter.event_id, letter.retryable) for letter in dead.letters] == [
        (str(e.event_id), True) for e in events if "bad" in e.incident.services
    ]
    assert {letter.reason for letter in dead.letters} == {
        f"picky: unexpected error ({type(failure).__name__})"
    }
    assert str(failure.args[0]) not in caplog.text  # the message can quote a credential


async def test_a_broken_deploy_still_stops_the_sink(clock: FakeClock) -> None:
    stories = [IncidentStory(service="bad", name=f"Alert{i}") for i in range(3)]
    sink = Picky(ValueError("every event"))
    # (SEVFLOW_SINKS_DLQ_MAX_CONSECUTIVE made small)
    worker, _ = worker_for(sink, clock, threshold=100, max_consecutive_dead=2)  # type: ignore[arg-type]
    with pytest.raises(SinkStopped, match="consecutive events dead-lettered"):
        await worker.process(records([e for s in stories for e in s.fire()]))


async def test_a_statement_the_store_refuses_as_wrong_stops_the_sink(clock: FakeClock) -> None:
    sink = Picky(ProgrammingError("SELECT", {}, Exception("no such table: sink_refs")))
    worker, dead = worker_for(sink, clock)  # type: ignore[arg-type]
    with pytest.raises(ProgrammingError):
        await worker.process(records(IncidentStory(service="bad").fire()))
    assert dead.letters == []
