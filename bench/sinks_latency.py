"""Sink delivery benchmark: an event on Kafka → the fake PagerDuty receiving the trigger.

Two scenarios, each next to a raw baseline measured in the same run on the same broker and fake:

* steady: distinct incidents opened at a steady rate (default 200 events/s);
  latency = fake's first receipt of the incident's trigger minus the moment the event was sent.
* storm: 10,000 events of one incident (opened, then its alert flapping): exactly one trigger;
  reports how long the sink takes to work through the storm.

Baseline: a bare aiokafka consumer that POSTs each record to the same fake with httpx (no delivery
log, no retries, no mapping). Prints figures only.

    .venv/bin/python -m bench.sinks_latency [--rate 200] [--seconds 10] [--storm 10000]
"""

import argparse
import asyncio
import contextlib
import functools
import ssl
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kafka_admin.topics import ensure_topics
from models.events import IncidentEvent
from models.settings import Settings
from models.topics import TopicSpec
from sevflow.roles.sinks import create_sink_tables
from sinks.clock import SystemClock
from sinks.dlq import MemoryDeadLetters
from sinks.fanout import build_sinks
from sinks.kafka import group_id, sink_consumer
from sinks.storm import StormDetector
from sinks.worker import SinkWorker
from store.db import async_engine
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.http import make_certificate
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.kafka_io import topics_swept

ROUTING_KEY = "B" * 32


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = sorted(v * 1000 for v in values)
    p = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return f"n={len(ms):5d}  p50={p[49]:8.1f} ms  p99={p[98]:8.1f} ms  max={ms[-1]:8.1f} ms"


async def produce_paced(
    bootstrap: str, topic: str, events: list[IncidentEvent], rate: float
) -> dict[str, float]:
    """Send at ``rate`` per second; returns incident id → send time (monotonic)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        start = time.monotonic()
        for i, event in enumerate(events):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.setdefault(event.incident_id, time.monotonic())
            await producer.send(topic, key=event.incident_id.encode(), value=event.to_bytes())
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def wait_for(check, limit: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run_sink(settings: Settings, stop: asyncio.Event) -> None:
    create_sink_tables(settings.sqlalchemy_url())
    engine = async_engine(settings.sqlalchemy_url(), checkpoint_in_background=True)
    clock = SystemClock()
    (sink,) = [s for s in build_sinks(settings, engine, clock) if s.name == "pagerduty"]
    consumer = sink_consumer(settings, sink.name)
    await consumer.start()
    worker = SinkWorker(
        sink,
        dead_letters=MemoryDeadLetters(),
        storm=StormDetector(settings.sinks_storm_threshold),
        clock=clock,
        concurrency=settings.sinks_concurrency,
        max_consecutive_dead=settings.sinks_dlq_max_consecutive,
    )
    try:
        await worker.run(consumer, stop)
    finally:
        await consumer.stop()
        await sink.close()
        await engine.dispose()


async def run_baseline(bootstrap: str, topic: str, url: str, cafile: Path, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=str(cafile)), timeout=10
    ) as http:
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                for messages in batch.values():
                    for message in messages:
                        event = IncidentEvent.from_bytes(message.value)
                        if event.type != "opened":
                            continue
                        payload = {
                            "summary": event.incident.title,
                            "source": "bench",
                            "severity": "error",
                        }
                        body = {"routing_key": ROUTING_KEY, "event_action": "trigger",
                                "dedup_key": event.incident_id, "payload": payload}  # fmt: skip
                        await http.post(f"{url}/v2/enqueue", json=body)
                if batch:
                    await consumer.commit()
        finally:
            await consumer.stop()


def steady_events(count: int, tag: str) -> list[IncidentEvent]:
    return [
        IncidentStory(name=f"Bench{tag}{i}", group=f"{tag}-{i}").fire(at=T0 + timedelta(milliseconds=i))[
            0
        ]
        for i in range(count)
    ]


def storm_events(count: int, tag: str) -> list[IncidentEvent]:
    story = IncidentStory(name=f"Storm{tag}", group=f"storm-{tag}")
    events = story.fire()
    i = 0
    while len(events) < count:
        i += 1
        at = T0 + timedelta(seconds=i)
        events += story.resolve_alert(at=at) if i % 2 else story.fire(at=at)
    return events[:count]


async def drained(bootstrap: str, group: str, topic: str, limit: float) -> bool:
    """Wait until ``group`` has committed every record of ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(8)]
        ends = await probe.end_offsets(partitions)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group)
            if all(
                committed.get(tp) is not None and committed[tp].offset >= end
                for tp, end in ends.items()
                if end
            ):
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await probe.stop()
        await admin.close()


async def scenario(name: str, bootstrap: str, fake: FakePagerDuty, cert: Path, workdir: Path,
                   events_for, rate: float, limit: float,
                   args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap=bootstrap,
        events_topic=f"bench-events-{suffix}",
        sinks_group_prefix=f"bench-sink-{suffix}",
        database_url=args.database_url or f"sqlite:///{workdir / f'bench-{suffix}.db'}",
        sinks_concurrency=args.concurrency,
        pagerduty_routing_key=ROUTING_KEY,
        pagerduty_base_url=fake.url,
        pagerduty_ca_file=cert,
        sinks_storm_threshold=1_000_000,
    )
    raw_topic = f"bench-raw-{suffix}"
    await ensure_topics(
        bootstrap,
        [settings.topic_spec(settings.events_topic), TopicSpec(raw_topic, settings.topic_partitions)],
    )
    for label, topic in (
        ("sevflow PagerDuty sink", settings.events_topic),
        ("raw aiokafka + httpx", raw_topic),
    ):
        events = events_for(f"{label[:3]}{suffix}")  # fresh incident ids: the log remembers old ones
        keys = {e.incident_id for e in events}
        stop = asyncio.Event()
        runner = (
            run_sink(settings, stop) if topic == settings.events_topic
            else run_baseline(bootstrap, topic, fake.url, cert, stop)
        )  # fmt: skip
        task = asyncio.create_task(runner)
        await asyncio.sleep(3)  # consumer joined its group
        started = time.monotonic()
        sent = await produce_paced(bootstrap, topic, events, rate)
        done = await wait_for(functools.partial(set.issubset, keys, fake.first_seen.keys()), limit)
        if done and name == "storm" and topic == settings.events_topic:
            done = await drained(bootstrap, group_id(settings, "pagerduty"), topic, limit)
        elapsed = time.monotonic() - started
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.wait_for(task, 30)
            except Exception as exc:  # noqa: BLE001 (a benchmark reports, it does not recover)
                print(f"  {label}: failed: {exc!r}")
        latencies = [fake.first_seen[k] - sent[k] for k in keys if k in fake.first_seen]
        triggers = sum(
            1 for e in fake.events if e.get("dedup_key") in keys and e["event_action"] == "trigger"
        )
        print(f"  {label:24s} {percentiles(latencies)}  triggers={triggers}  "
              f"{'' if done else 'INCOMPLETE '}elapsed={elapsed:.1f}s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second (steady)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the steady scenario")
    parser.add_argument("--storm", type=int, default=10_000, help="events of the one-incident storm")
    parser.add_argument("--concurrency", type=int, default=32, help="SEVFLOW_SINKS_CONCURRENCY")
    parser.add_argument(
        "--database-url", default=None, help="delivery log database (default: a fresh SQLite file)"
    )
    args = parser.parse_args()
    with topics_swept(args.bootstrap):
        asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    """Both scenarios against one fake PagerDuty."""
    with tempfile.TemporaryDirectory(prefix="sevflow-bench-") as tmp:
        workdir = Path(tmp)
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(f"delivery log: {backend}; sink concurrency: {args.concurrency}")
        cert, key = make_certificate(workdir)
        fake = FakePagerDuty((cert, key)).start()
        try:
            count = int(args.rate * args.seconds)
            print(
                f"steady: {count} opened events of distinct incidents at {args.rate:.0f}/s "
                "(latency: event sent to Kafka -> trigger received by the fake PagerDuty)"
            )
            await scenario("steady", args.bootstrap, fake, cert, workdir,
                           lambda tag: steady_events(count, tag), args.rate, 120, args)  # fmt: skip
            print(f"storm: {args.storm} events of one incident, sent as fast as possible "
                  "(expect exactly one trigger; latency of that trigger)")  # fmt: skip
            await scenario("storm", args.bootstrap, fake, cert, workdir,
                           lambda tag: storm_events(args.storm, tag), 1_000_000, 300, args)  # fmt: skip
        finally:
            fake.close()


if __name__ == "__main__":
    main()
