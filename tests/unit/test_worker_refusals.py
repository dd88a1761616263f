"""The worker's count of refused records: one series per topic and reason, however many records
are refused (a label holding the record's position would grow without limit)."""

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from models.incident import LifecyclePolicy
from models.settings import Settings
from store.db import async_engine
from store.incidents import IncidentStore
from streams.metrics import LagProbe, WorkerMetrics
from streams.pipeline import Pipeline
from streams.quarantine import MemoryQuarantine, PoisonLimit, Quarantine
from streams.records import decode_alert
from streams.relay import RelaySettings
from streams.relay_process import RelayProcess
from streams.rules import load_rules
from streams.steps import WorkerSteps
from testkit.fakes.clock import FakeClock
from tests.builders import T0


def _event(topic: str, partition: int, offset: int, value: bytes) -> SimpleNamespace:
    """What faust hands an agent: the record's value and key, and where it was read."""
    message = SimpleNamespace(topic=topic, partition=partition, offset=offset)
    return SimpleNamespace(message=message, key=b"k", value=value)


async def test_refused_records_are_counted_by_topic_not_by_position(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}")
    engine = async_engine(settings.sqlalchemy_url())
    stats = WorkerMetrics(CollectorRegistry())
    clock = FakeClock(T0)
    quarantine = Quarantine(
        MemoryQuarantine(),
        {settings.alerts_topic: settings.alerts_quarantine_topic},
        PoisonLimit(0),
        clock.now,
        stats.registry,
    )
    steps = WorkerSteps(
        settings,
        Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy()),
        RelayProcess(RelaySettings.of(settings), on_published=lambda _: None),
        LagProbe(settings.kafka_bootstrap, "group", [settings.alerts_topic]),
        quarantine,
        clock.now,
        stats,
    )
    try:
        for offset in range(5):
            poison = _event(settings.alerts_topic, offset % 2, offset, b"not json")
            await steps.refuse(poison, decode_alert(poison.value))
    finally:
        await engine.dispose()

    series = [
        sample
        for metric in stats.registry.collect()
        if metric.name == "sevflow_worker_records_refused"
        for sample in metric.samples
        if sample.name.endswith("_total")
    ]
    assert [(s.labels, s.value) for s in series] == [
        ({"topic": settings.alerts_topic, "reason": "invalid"}, 5.0)
    ]
