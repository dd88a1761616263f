"""The sinks' CPU per event: a backlog of incident openings worked through by the sinks role's
sinks (PagerDuty against the TLS fake, the built-in status page), as ``sevflow sinks`` runs them.

Writes N ``opened`` events of distinct SEV2 incidents (both sinks take them) to a fresh topic at
a steady rate from a thread of its own (``--rate 0``: all of them first, a backlog), while each
sink's consumer and worker run in this process, and measures, until every sink's group has
committed the whole topic: the CPU time of the event loop's thread (the sinks, their
Kafka consumers and the SQLite store run there; the fake PagerDuty answers on threads of its own
and is not counted) per event, and the wall time. ``--profile`` prints cProfile's top entries of
the same run.

    .venv/bin/python -m bench.sinks_cpu [--events 2000] [--rate 200] [--sinks pagerduty,statuspage]
        [--writer 0.02] [--profile [--profile-out FILE]] [--database-url URL]
"""

import argparse
import asyncio
import cProfile
import io
import pstats
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.sinks_latency import ROUTING_KEY, drained
from kafka_admin.topics import ensure_topics
from models.settings import Settings
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


async def produce(settings: Settings, count: int, tag: str, rate: float) -> None:
    """``count`` openings, at ``rate`` per second (0: at once)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        start = time.monotonic()
        for i in range(count):
            if rate and (delay := start + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            story = IncidentStory(name=f"Cpu{tag}{i}", group=f"{tag}-{i}")
            (event,) = story.fire(at=T0 + timedelta(milliseconds=i))
            await producer.send(
                settings.events_topic, key=event.incident_id.encode(), value=event.to_bytes()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def consume(
    settings: Settings,
    names: set[str],
    count: int,
    profile: bool,
    producing: Callable[[], Awaitable[None]],
    profile_out: str | None = None,
) -> None:
    create_sink_tables(settings.sqlalchemy_url())
    engine = async_engine(settings.sqlalchemy_url(), checkpoint_in_background=True)
    clock = SystemClock()
    sinks = [s for s in build_sinks(settings, engine, clock) if s.name in names]
    consumers = [sink_consumer(settings, s.name) for s in sinks]
    for consumer in consumers:
        await consumer.start()
    stop = asyncio.Event()
    workers = [
        SinkWorker(
            sink,
            dead_letters=MemoryDeadLetters(),
            storm=StormDetector(settings.sinks_storm_threshold),
            clock=clock,
            concurrency=settings.sinks_concurrency,
            max_consecutive_dead=settings.sinks_dlq_max_consecutive,
        )
        for sink in sinks
    ]
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.thread_time(), time.monotonic()
    if profiler is not None:
        profiler.enable()
    tasks = [asyncio.create_task(w.run(c, stop)) for w, c in zip(workers, consumers, strict=True)]
    try:
        await asyncio.sleep(3)  # the consumers joined their groups
        await producing()
        for sink in sinks:
            group = group_id(settings, sink.name)
            if not await drained(settings.kafka_bootstrap, group, settings.events_topic, 600):
                print(f"  {sink.name}: INCOMPLETE")
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        for sink in sinks:
            await sink.close()
        await engine.dispose()
    print(
        f"  {'+'.join(s.name for s in sinks)}: {count} events, CPU {cpu:.2f} s "
        f"= {cpu / count * 1000:.2f} ms per event, wall {wall:.1f} s"
    )
    if profiler is not None:
        print_profile(profiler, profile_out)


def print_profile(profiler: cProfile.Profile, out_file: str | None) -> None:
    """The profile's top entries by own and by cumulative time; all of it to ``out_file``."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    if out_file:
        profiler.dump_stats(out_file)


def hold_write_lock(path: Path, hold: float, done: threading.Event) -> None:
    """The stream worker's share of an SQLite store: a write transaction of ``hold`` seconds,
    then as long again without one, until ``done``."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_writer (at REAL)")
    while not done.is_set():
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_writer VALUES (?)", (time.time(),))
        time.sleep(hold)
        conn.execute("COMMIT")
        time.sleep(hold)
    conn.close()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sevflow-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = make_certificate(workdir)
        fake = FakePagerDuty((cert, key)).start()
        suffix = uuid.uuid4().hex[:8]
        try:
            settings = Settings(
                kafka_bootstrap=args.bootstrap,
                events_topic=f"bench-events-{suffix}",
                sinks_group_prefix=f"bench-sink-{suffix}",
                database_url=args.database_url or f"sqlite:///{workdir / 'bench.db'}",
                sinks_concurrency=args.concurrency,
                pagerduty_routing_key=ROUTING_KEY,
                pagerduty_base_url=fake.url,
                pagerduty_ca_file=cert,
                sinks_storm_threshold=1_000_000,
            )
            await ensure_topics(args.bootstrap, [settings.topic_spec(settings.events_topic)])
            names = set(args.sinks.split(","))
            done = threading.Event()
            if args.writer and not args.database_url:
                create_sink_tables(settings.sqlalchemy_url())
                holder = (workdir / "bench.db", args.writer, done)
                threading.Thread(target=hold_write_lock, args=holder, daemon=True).start()
            if not args.rate:  # a backlog: produced before the sinks start
                await produce(settings, args.events, suffix, 0)

            async def producing() -> None:
                # Paced: by a thread of its own (its CPU is not the sinks'), while they consume.
                if args.rate:
                    paced = produce(settings, args.events, suffix, args.rate)
                    await asyncio.to_thread(asyncio.run, paced)

            await consume(settings, names, args.events, args.profile, producing, args.profile_out)
            done.set()
        finally:
            fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s; 0: a backlog")
    parser.add_argument("--sinks", default="pagerduty,statuspage")
    parser.add_argument("--concurrency", type=int, default=32, help="SEVFLOW_SINKS_CONCURRENCY")
    parser.add_argument(
        "--writer",
        type=float,
        default=0.0,
        help="SQLite: another process's share, write transactions of this many seconds, as often",
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument(
        "--profile-out", default=None, help="with --profile: also write the stats to this file"
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with topics_swept(args.bootstrap):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
