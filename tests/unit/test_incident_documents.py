"""A worker takes the incidents it parsed or wrote before from memory only while their stored
document is unchanged, and reads the alerts' rows back as the states it wrote."""

from datetime import timedelta

from models.events import EventType, IncidentState
from models.incident import AlertState, LifecyclePolicy
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert, command


def worker(engine) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())


async def test_a_change_made_by_another_worker_is_read(engine) -> None:  # type: ignore[no-untyped-def]
    first, second = worker(engine), worker(engine)
    (opened,) = await first.process_alerts([alert(instance="a")])
    acked = await second.process_command(command(opened.incident_id, at=T0 + timedelta(minutes=1)))
    assert acked.applied
    (added,) = await first.process_alerts([alert(instance="b", at=T0 + timedelta(minutes=2))])
    assert added.type is EventType.ALERT_ADDED
    assert added.incident.state is IncidentState.ACKNOWLEDGED
    assert added.sequence == 3
    again = await second.process_command(
        command(opened.incident_id, "resolve", at=T0 + timedelta(minutes=3), command_id="c2")
    )
    assert again.applied
    assert again.events[0].incident.alerts_total == 2  # the first worker's change, read


async def test_alert_states_read_back_are_what_validation_builds(engine) -> None:  # type: ignore[no-untyped-def]
    p = worker(engine)
    records = [alert(instance="a"), alert(status="resolved", instance="b", service="api")]
    await p.process_alerts(records)
    async with p.store.transaction() as tx:
        states = await tx.load_alerts(r.fingerprint for r in records)
    assert len(states) == 2
    for state in states.values():
        assert AlertState.model_validate(state.model_dump()) == state
    assert {s.status for s in states.values()} == {"firing", "resolved"}
