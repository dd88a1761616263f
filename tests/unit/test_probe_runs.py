"""Which worker probes which incident (the partition its results go to), and a fair scan of the
quiet incidents: incidents whose probe never passes cannot hold the others back, neither in the
probe runner nor in the quiet timer."""

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from models.events import IncidentState
from models.verification import Probe, ProbeResult, parse_probes
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.probes import ProbeRunner, check, partition_of
from streams.quiet_scan import QuietScan
from streams.rules import load_rules
from testkit.fakes.clock import FakeClock
from tests.builders import T0, alert
from tests.unit.test_verification import POLICY

PROBES = parse_probes('[{"service": "api", "http_url": "https://api.example.com/health"}]')


def test_partition_of_is_kafkas_default_partitioner() -> None:
    # Kafka's own test vectors (UtilsTest.testMurmur2): the Java client places keys the same way.
    assert partition_of(b"21", 2**31 - 1) == (-973932308) & 0x7FFFFFFF
    assert partition_of(b"foobar", 2**31 - 1) == (-790332482) & 0x7FFFFFFF
    for n in (1, 3, 8, 12):
        for key in (b"inc_1", b"inc_0193a7b2c4d5", "incident-é".encode()):
            assert partition_of(key, n) == DefaultPartitioner()(key, list(range(n)), [])


async def quiet_incidents(pipeline: Pipeline, count: int, service: str = "api") -> list[str]:
    """``count`` incidents of ``service`` whose alerts fired at T0 and resolved at T0 + 1m."""
    records = [alert(f"{service}{n}", service=service) for n in range(count)]
    resolved = [
        alert(f"{service}{n}", service=service, status="resolved", at=T0 + timedelta(minutes=1))
        for n in range(count)
    ]
    events = await pipeline.process_alerts([*records, *resolved])
    return sorted({e.incident_id for e in events})


def runner(
    pipeline: Pipeline,
    published: list[ProbeResult],
    answer: Callable[[httpx.Request], httpx.Response] = lambda _: httpx.Response(200),
    **options: object,
) -> tuple[ProbeRunner, httpx.AsyncClient]:
    async def publish(result: ProbeResult) -> None:
        published.append(result)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    clock = FakeClock(T0 + timedelta(minutes=2))
    return ProbeRunner(pipeline.store, PROBES, publish, clock.now, client, 2.0, **options), client  # type: ignore[arg-type]


async def test_each_incident_is_probed_by_the_one_worker_assigned_its_partition(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY, probes=PROBES)
    ids = await quiet_incidents(pipeline, 12)
    partitions = 4
    assigned = {"a": {0, 1}, "b": {2, 3}}  # two workers, the topic's partitions split
    published: list[ProbeResult] = []
    by_worker: dict[str, int] = {}
    for worker in ("a", "b"):
        mine = assigned[worker]
        run, client = runner(
            pipeline,
            published,
            owns=lambda incident_id, mine=mine: partition_of(incident_id.encode(), partitions) in mine,
        )
        by_worker[worker] = len(await run.run_once())
        await client.aclose()
    assert sorted(r.incident_id for r in published) == ids  # each once, by one worker
    assert by_worker["a"] > 0
    assert by_worker["b"] > 0


async def test_the_probe_runner_pages_through_every_quiet_incident(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY, probes=PROBES)
    ids = await quiet_incidents(pipeline, 25)
    published: list[ProbeResult] = []
    run, client = runner(pipeline, published, scan=QuietScan(10))
    for _ in range(3):
        await run.run_once()
    assert sorted(r.incident_id for r in published) == ids
    await run.run_once()  # then from the start again
    await client.aclose()
    assert [r.incident_id for r in published[25:]] == ids[:10]


async def test_incidents_stuck_without_a_pass_do_not_starve_the_quiet_timer(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(
        IncidentStore(engine), load_rules(None), POLICY, probes=PROBES, quiet_scan=QuietScan(3)
    )
    stuck = await quiet_incidents(pipeline, 7)  # probe api: never a pass, they stay quiet
    later = [
        alert("WebDown", service="web", at=T0 + timedelta(minutes=2)),
        alert("WebDown", service="web", status="resolved", at=T0 + timedelta(minutes=3)),
    ]
    (web,) = {e.incident_id for e in await pipeline.process_alerts(later)}
    resolved: set[str] = set()
    for _ in range(4):  # 8 candidates, pages of 3: each seen within 4 runs
        events = await pipeline.expire_quiet(T0 + timedelta(hours=1))
        resolved |= {e.incident_id for e in events}
    assert resolved == {web}
    for incident_id in stuck:
        incident = await pipeline.store.get(incident_id)
        assert incident is not None
        assert incident.state is not IncidentState.RESOLVED


_PROMQL = Probe(service="api", promql="up", prometheus_url="https://prometheus.example.com")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"\xff\xfe<html>login</html>", {"content-type": "application/json"}),  # not UTF-8
        (b'{"status":"success","data":["x"]}', {}),  # data not an object
        (
            b'{"status":"success","data":{"resultType":"vector","result":[{"value":[1,'
            + b"9" * 400
            + b"]}]}}",
            {},
        ),
        (b'{"status":"success","data":{"resultType":"scalar","result":[1,' + b"9" * 5000 + b"]}}", {}),
        (b"[" * 100_000 + b"]" * 100_000, {}),  # nested past the stack
    ],
    ids=["not utf-8", "data a list", "a 400-digit value", "a 5,000-digit number", "nested"],
)
async def test_a_prometheus_answer_no_check_foresaw_fails_the_probe_not_the_worker(
    body: bytes, headers: dict[str, str]
) -> None:
    """Each of these raised out of the PromQL check, through the worker's probe timer, and
    stopped the worker; its next start probed the same incident again."""
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=body, headers=headers))
    async with httpx.AsyncClient(transport=transport) as client:
        ok, detail = await check(client, _PROMQL, 2.0)
    assert not ok
    assert detail.startswith("PromQL up ")


async def test_a_check_that_raises_fails_its_probe_and_the_others_run(engine) -> None:  # type: ignore[no-untyped-def]
    """Whatever a service answers that no check foresaw fails that probe: it raised through the
    worker's timer before, stopping the worker, whose next tick probed the same incident again."""
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY, probes=PROBES)
    ids = await quiet_incidents(pipeline, 3)

    def answer(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a transport nobody foresaw")

    published: list[ProbeResult] = []
    run, client = runner(pipeline, published, answer)
    await run.run_once()
    await client.aclose()
    assert sorted(r.incident_id for r in published) == ids
    assert {(r.ok, r.detail) for r in published} == {
        (False, "the check could not read the answer: RuntimeError")
    }
