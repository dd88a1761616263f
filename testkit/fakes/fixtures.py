"""Fixtures and builders shared by the sink tests: the three vendor fakes, settings that point
sevflow at them, and a worker fed directly with records (no broker) for the delivery tests.

Import the fixtures into a test module by name (``from testkit.fakes.fixtures import fake_pagerduty``).
"""

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import IncidentEvent
from models.settings import Settings
from sinks.base import Sink
from sinks.clock import Clock
from sinks.dlq import DeadLetter, MemoryDeadLetters
from sinks.fanout import build_sinks
from sinks.kafka import COMMIT_WAIT
from sinks.storm import StormDetector
from sinks.worker import Record, SinkWorker
from testkit.fakes.clock import FakeClock
from testkit.fakes.http import make_certificate
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage

__all__ = [
    "ROUTING_KEY",
    "SLACK_TOKEN",
    "SP_KEY",
    "SP_PAGE",
    "clock",
    "fake_pagerduty",
    "fake_slack",
    "fake_statuspage",
    "records",
    "sink_named",
    "sink_settings",
    "tls_cert",
    "worker_for",
]

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, like a real integration key
SLACK_TOKEN = "xoxb-1111-2222-sevflowtest"
SP_KEY = "sp-test-api-key"
SP_PAGE = "gytm4qzbx9t6"


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_pagerduty(tls_cert: tuple[Path, Path]) -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty(tls_cert).start()
    yield fake
    fake.close()


@pytest.fixture
def fake_slack(clock: FakeClock) -> Iterator[FakeSlack]:
    fake = FakeSlack(SLACK_TOKEN, clock=clock, post_interval=1.0).start()
    yield fake
    fake.close()


@pytest.fixture
def fake_statuspage() -> Iterator[FakeStatuspage]:
    fake = FakeStatuspage(SP_KEY, SP_PAGE, ["cmpapi000001", "cmpweb000001"]).start()
    yield fake
    fake.close()


def sink_settings(
    *,
    pagerduty: FakePagerDuty | None = None,
    slack: FakeSlack | None = None,
    statuspage: FakeStatuspage | None = None,
    cert: tuple[Path, Path] | None = None,
    **extra: Any,
) -> Settings:
    """Settings that point sevflow's sinks at the fakes, the way a user points them at a proxy."""
    values: dict[str, Any] = {
        "sinks_retry_initial_seconds": 1.0,
        "sinks_retry_max_seconds": 60.0,
        "sinks_retry_deadline_seconds": 3600.0,
        "sinks_request_timeout_seconds": 5.0,
        "sinks_metrics_port": 0,  # tests that want /metrics choose a free port
    }
    if pagerduty is not None:
        values.update(pagerduty_routing_key=ROUTING_KEY, pagerduty_base_url=pagerduty.url)
        values["pagerduty_ca_file"] = cert[0] if cert else None
    if slack is not None or statuspage is not None or "slack_base_url" in extra:
        values["allow_insecure_vendor_urls"] = True  # the fakes are plain http on loopback
    if slack is not None:
        values.update(slack_token=SLACK_TOKEN, slack_base_url=slack.url)
    if statuspage is not None:
        values.update(
            statuspage_api_key=SP_KEY,
            statuspage_page_id=SP_PAGE,
            statuspage_base_url=statuspage.url,
            statuspage_components={"api": "cmpapi000001", "web": "cmpweb000001"},
        )
    values.update(extra)
    return Settings(**values)


def sink_named(settings: Settings, engine: AsyncEngine, clock: Clock, name: str) -> Sink:
    sinks = build_sinks(settings, engine, clock)
    chosen = [s for s in sinks if s.name == name]
    assert chosen, f"sink {name} is not configured"
    return chosen[0]


def worker_for(
    sink: Sink,
    clock: Clock,
    *,
    threshold: int = 20,
    concurrency: int = 8,
    commit_wait: float = COMMIT_WAIT,
    max_consecutive_dead: int = 1000,
) -> tuple[SinkWorker, MemoryDeadLetters]:
    dead = MemoryDeadLetters()
    worker = SinkWorker(
        sink,
        dead_letters=dead,
        storm=StormDetector(threshold),
        clock=clock,
        concurrency=concurrency,
        max_consecutive_dead=max_consecutive_dead,
        commit_wait=commit_wait,
    )
    return worker, dead


async def delivered(sink: Sink, clock: Clock, *batches: Sequence[IncidentEvent]) -> list[DeadLetter]:
    """Each batch of events through one sink worker, in order, as the sinks role delivers them
    (a batch repeated is a redelivery); the sink is closed after. The dead letters written."""
    worker, dead = worker_for(sink, clock)
    try:
        for batch in batches:
            await worker.process(records(batch))
    finally:
        await sink.close()
    return list(dead.letters)


def records(events: Sequence[IncidentEvent], topic: str = "incident-events") -> list[Record]:
    """Events as the worker would poll them (one partition, consecutive offsets)."""
    return [Record(topic, 0, offset, event.to_bytes()) for offset, event in enumerate(events)]
