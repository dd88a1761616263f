"""The verification probes against real servers: the HTTP health probe against a local service,
the PromQL probe against a real Prometheus scraping it; and the runner, which publishes a result
for each quiet incident with a probe and none for the others."""

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from models.incident import LifecyclePolicy
from models.verification import Probe, ProbeResult, parse_probes
from store.db import async_engine
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.probes import ProbeRunner, check
from streams.rules import load_rules
from testkit.fakes.clock import FakeClock
from testkit.local import free_port
from testkit.prometheus import prometheus_scraping
from testkit.service import Service
from testkit.store_backends import fresh_database
from tests.builders import T0, alert

pytestmark = pytest.mark.integration


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service(healthy=False).start()
    yield running
    running.close()


async def test_health_probe_fails_until_the_service_answers_2xx(service: Service) -> None:
    probe = Probe(service="api", http_url=f"{service.url}/health")
    async with httpx.AsyncClient() as client:
        assert await check(client, probe, 2.0) == (False, f"GET {service.url}/health answered 503")
        service.healthy = True
        assert await check(client, probe, 2.0) == (True, f"GET {service.url}/health answered 200")
        nobody = Probe(service="api", http_url=f"http://127.0.0.1:{free_port()}/health")
        ok, detail = await check(client, nobody, 2.0)
    assert not ok
    assert detail.startswith(f"GET {nobody.http_url} failed: ConnectError")


async def test_promql_probe_against_a_real_prometheus(service: Service, tmp_path: Path) -> None:
    with prometheus_scraping(service.url, tmp_path) as prometheus:
        probe = Probe(service="api", promql="sevflow_test_healthy == 1", prometheus_url=prometheus)
        as_bool = Probe(service="api", promql="sevflow_test_healthy", prometheus_url=prometheus)
        async with httpx.AsyncClient() as client:
            assert await check(client, probe, 2.0) == (
                False,
                "PromQL sevflow_test_healthy == 1 returned no series",
            )
            assert await check(client, as_bool, 2.0) == (
                False,
                "PromQL sevflow_test_healthy returned a zero value",
            )
            bad = Probe(service="api", promql="sum(", prometheus_url=prometheus)
            ok, detail = await check(client, bad, 2.0)
            assert not ok
            assert detail.startswith("PromQL sum( Prometheus answered 400: ")
            service.healthy = True
            # The next scrapes (every second) see the service healthy: wait with a deadline.
            deadline = time.monotonic() + 60
            found = await check(client, probe, 2.0)
            while not found[0] and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                found = await check(client, probe, 2.0)
            assert found == (True, "PromQL sevflow_test_healthy == 1 returned 1 truthy value")


async def test_runner_probes_quiet_incidents_with_a_probe_and_publishes_results(
    service: Service, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)
    engine = async_engine(url)
    probes = parse_probes(f'[{{"service": "api", "http_url": "{service.url}/health"}}]')
    pipeline = Pipeline(
        IncidentStore(engine),
        load_rules(None),
        LifecyclePolicy(quiet_period=timedelta(minutes=5)),
        probes=probes,
    )
    await pipeline.process_alerts(
        [
            alert(service="api"),
            alert("DiskFull", service="db"),  # no probe for db
            alert(service="api", status="resolved", at=T0 + timedelta(minutes=1)),
            alert("DiskFull", service="db", status="resolved", at=T0 + timedelta(minutes=1)),
        ]
    )
    published: list[ProbeResult] = []

    async def publish(result: ProbeResult) -> None:
        published.append(result)

    clock = FakeClock(T0 + timedelta(minutes=2))
    async with httpx.AsyncClient() as client:
        runner = ProbeRunner(pipeline.store, probes, publish, clock.now, client, 2.0)
        (failed,) = await runner.run_once()
        service.healthy = True
        (passed,) = await runner.run_once()
    assert published == [failed, passed]
    (api,) = [i for i in await pipeline.store.list_incidents() if "api" in i.services]
    await engine.dispose()
    assert (failed.incident_id, failed.ok, failed.detail) == (
        api.id,
        False,
        f"GET {service.url}/health answered 503",
    )
    assert (passed.ok, passed.checked_at) == (True, T0 + timedelta(minutes=2))
