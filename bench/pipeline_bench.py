"""Stream worker throughput, storm drain time and memory, next to a raw aiokafka loop.

Measured in one run on this machine's real broker (scripts/kafka.sh start):

1. raw: an aiokafka consumer reading N alert records and producing each to another topic
   (consume → produce, nothing else) — the ceiling for any Kafka processor in Python here;
2. faust no-op: a faust agent taking the same records in the worker's batches and doing nothing
   (bench/faust_noop.py) — faust's own ceiling, between the raw loop and the worker; then the
   same agent in the worker's faust app, whose consumer hands records over more cheaply;
3. pipeline alone: the worker's processing steps called in this process on the same records
   (decode, classify, dedup, group, persist with its events), no Kafka, no faust, no relay: the
   ceiling of sevflow's own work per alert on this store; then on re-sent alerts (90 % repeats,
   bench/pipeline_alone.py), and the same on PostgreSQL (``--postgres``) in the same run;
4. sevflow: ``sevflow worker`` (classify → dedup → group → persist + outbox → incident-events)
   over the same N records, alerts/s from its first stored alert to its last;
5. workers: one ``sevflow worker``, then W in one consumer group (``--workers``), each on a
   fresh topic and store, over fresh then re-sent records (bench/pipeline_workers.py): alerts/s
   beside one worker's, and per worker the partitions it held and the records it applied (the
   benchmark stops if a worker held none or applied none); on SQLite and PostgreSQL;
6. storm: S alerts of one group (one incident), time until all are stored and every event is
   published, and the worker's RSS with S open alerts.

Usage: .venv/bin/python -m bench.pipeline_bench [--alerts 20000] [--storm 100000] [--workers 2]
       [--database-url URL] [--skip-throughput]
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from bench import pipeline_workers
from bench.pipeline_alone import POSTGRES, measure, report, store_for
from kafka_admin.topics import ensure_topic
from models.alert import AlertRecord
from models.alertmanager import format_group_key
from models.fingerprint import fingerprint
from store.db import normalise_url
from store.schema import incident_events, partition_progress
from testkit.harness import role_env
from testkit.kafka_io import topics_swept

REPO = Path(__file__).resolve().parent.parent


def records(n: int, groups: int, start: datetime) -> list[AlertRecord]:
    out = []
    for i in range(n):
        group = i % groups
        labels = {
            "alertname": f"Bench{group}",
            "severity": "warning",
            "instance": f"host-{i}",
            "job": "api",
        }
        out.append(
            AlertRecord(
                fingerprint=fingerprint(labels),
                status="firing",
                labels=labels,
                annotations={"summary": f"Bench{group} on host-{i}", "description": "x" * 120},
                starts_at=start,
                receiver="bench",
                group_key=format_group_key({"alertname": f"Bench{group}"}),
                external_url="http://alertmanager.bench",
                generator_url="http://prometheus.bench/graph",
                received_at=start + timedelta(microseconds=i),
            )
        )
    return out


async def produce(bootstrap: str, topic: str, batch: list[AlertRecord]) -> None:
    await ensure_topic(bootstrap, topic, 8)
    await pipeline_workers.produce_records(bootstrap, topic, batch)


async def raw_loop(bootstrap: str, source: str, n: int) -> float:
    """Seconds for a bare aiokafka consume → produce loop over ``n`` records."""
    sink = f"{source}-raw-out"
    await ensure_topic(bootstrap, sink, 8)
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await consumer.start()
    await producer.start()
    seen = 0
    started: float | None = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            futures = []
            for messages in batch.values():
                for m in messages:
                    started = started or time.perf_counter()
                    futures.append(await producer.send(sink, key=m.key, value=m.value))
            await asyncio.gather(*futures)
            seen += len(futures)
        await consumer.commit()
        assert started is not None
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()


def faust_noop(bootstrap: str, topic: str, n: int, batch_size: int, app: str = "faust") -> float:
    """Records/s of a faust agent that does nothing with them (bench/faust_noop.py), in faust's
    own app or (``app="worker"``) in the worker's."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.faust_noop", bootstrap, topic, str(n), str(batch_size), app],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"faust no-op agent failed:\n{done.stdout}\n{done.stderr}")
    return float(lines[-1])


def worker_env(
    bootstrap: str, topic: str, database_url: str, data_dir: Path, batch_size: int = 500
) -> dict[str, str]:
    """The worker's environment: ``topic`` as its alerts topic, a consumer group of its own."""
    return role_env(
        bootstrap,
        f"bench-{uuid.uuid4().hex[:6]}",
        database_url,
        data_dir,
        alerts_topic=topic,
        events_topic=f"{topic}-events",
        commands_topic=f"{topic}-commands",
        quiet_period_seconds="3600",
        batch_size=str(batch_size),
    )


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now (``VmHWM``: its peak so far), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (the worker's outbox relay)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def memory_of(worker: int) -> tuple[float, float, float, float]:
    """The RSS in MB of the worker's own process and of its outbox relay's, then their peaks."""
    relays = children(worker)
    return (
        rss_mb(worker),
        sum(rss_mb(c) for c in relays),
        rss_mb(worker, "VmHWM"),
        sum(rss_mb(c, "VmHWM") for c in relays),
    )


def start_worker(env: dict[str, str], log: IO[bytes]) -> "subprocess.Popen[bytes]":
    """``sevflow worker`` on a store migrated first, as ``sevflow run`` and a deployment's init-db
    job do: a worker that finds its store current never loads Alembic (store/schema_version.py)."""
    subprocess.run(
        [sys.executable, "-m", "sevflow", "init-db"], cwd=REPO, env=env, stdout=log, check=True
    )
    return subprocess.Popen(
        [sys.executable, "-m", "sevflow", "worker"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def run_worker(
    bootstrap: str, topic: str, n: int, database_url: str, data_dir: Path, batch_size: int = 500
) -> tuple[float, float, tuple[float, float, float, float]]:
    """(alerts/s, seconds until everything was published, memory) of one worker; memory: the RSS
    in MB at the end of the worker's own process and of its outbox relay's, then their peaks."""
    engine = create_engine(normalise_url(database_url, asynchronous=False))

    def count(query) -> int:  # type: ignore[no-untyped-def]
        try:
            with engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except SQLAlchemyError:  # the worker has not created its tables yet
            return 0

    # Records applied, from the worker's own progress rows (a few rows: the topic is fresh, so
    # the offsets count its records, and every record here is a new alert). A count(*) of the
    # alerts table, read every 50 ms, cost the store more the further the run went (PostgreSQL,
    # 20,000 alerts: 156 counts, 150 ms of the server's time, in pg_stat_statements).
    stored = select(func.coalesce(func.sum(partition_progress.c.next_offset), 0))
    unpublished = (
        select(func.count()).select_from(incident_events).where(incident_events.c.published_at.is_(None))
    )
    log = (data_dir / "worker.log").open("wb")
    launched = time.perf_counter()
    process = start_worker(worker_env(bootstrap, topic, database_url, data_dir, batch_size), log)
    try:
        first: tuple[float, int] | None = None
        while True:
            done = count(stored)
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            if done >= n:
                break
            if process.poll() is not None:
                raise SystemExit(f"worker exited: see {data_dir / 'worker.log'}")
            if now - launched > 900:
                raise SystemExit(f"worker too slow: {done}/{n} after 900 s")
            time.sleep(0.05)
        finished = time.perf_counter()
        while count(unpublished) > 0:
            time.sleep(0.05)
        published = time.perf_counter()
        memory = memory_of(process.pid)
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        engine.dispose()
    assert first is not None
    rate = (n - first[1]) / max(finished - first[0], 1e-9)
    return rate, published - first[0], memory


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--storm", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to run on, in throw-away databases created beside the one the URL "
        "names (its role needs CREATEDB; default: a fresh SQLite file, the embedded store)",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="SEVFLOW_BATCH_SIZE of the worker")
    parser.add_argument(
        "--postgres",
        default=POSTGRES,
        help="a PostgreSQL server whose figures are printed beside SQLite's, in the same run "
        "(throw-away databases; '' to skip)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="run one worker, then this many in one consumer group, over fresh and re-sent "
        "records (0: skip)",
    )
    parser.add_argument(
        "--skip-throughput",
        action="store_true",
        help="skip the raw loop, faust doing nothing, the pipeline alone and the first worker run",
    )
    return parser.parse_args()


def throughput(args: argparse.Namespace, base: Path, start: datetime) -> None:
    """The raw loop, faust doing nothing, the pipeline alone and the worker with its relay over
    the same records; prints their rates."""
    topic = f"bench-alerts-{uuid.uuid4().hex[:6]}"
    asyncio.run(produce(args.bootstrap, topic, records(args.alerts, args.groups, start)))
    raw_seconds = asyncio.run(raw_loop(args.bootstrap, topic, args.alerts))
    raw_rate = args.alerts / raw_seconds
    noop_rate = faust_noop(args.bootstrap, topic, args.alerts, args.batch_size)
    noop_worker_rate = faust_noop(args.bootstrap, topic, args.alerts, args.batch_size, "worker")

    def env_for(url: str, data_dir: Path) -> dict[str, str]:
        return worker_env(args.bootstrap, topic, url, data_dir, args.batch_size)

    batch = records(args.alerts, args.groups, start)
    alone = {None: measure(env_for, batch, base, args.database_url, args.batch_size)}
    (base / "w").mkdir()
    with store_for(args.database_url, base / "w" / "bench.db") as url:
        rate, _, _ = run_worker(args.bootstrap, topic, args.alerts, url, base / "w", args.batch_size)
    on_postgres = args.postgres if not args.database_url and args.postgres else None
    if on_postgres:
        (base / "pw").mkdir()
        alone[on_postgres] = measure(env_for, batch, base / "pw", on_postgres, args.batch_size)
        with store_for(on_postgres, base / "pw" / "unused.db") as url:
            pg_rate, _, _ = run_worker(
                args.bootstrap, topic, args.alerts, url, base / "pw", args.batch_size
            )
    print(
        f"records: {args.alerts} alerts in {args.groups} groups, "
        f"{len(records(1, 1, start)[0].to_bytes())} bytes each"
    )
    print(f"store:   {'SQLite (embedded)' if not args.database_url else 'PostgreSQL'}")
    print(f"raw aiokafka consume->produce: {raw_rate:9.0f} alerts/s")
    print(
        f"faust agent doing nothing:     {noop_rate:9.0f} alerts/s  ({noop_rate / raw_rate:.2f} of raw)"
    )
    print(
        f"  the same in the worker's app:{noop_worker_rate:9.0f} alerts/s  "
        f"({noop_worker_rate / raw_rate:.2f} of raw; its consumer's hand-over)"
    )
    for server, figures in alone.items():
        print(report("PostgreSQL" if server else "the store", figures))
    print(
        f"sevflow worker + its relay:    {rate:9.0f} alerts/s  ({rate / raw_rate:.2f} of raw, "
        f"{rate / noop_rate:.2f} of faust doing nothing, {rate / noop_worker_rate:.2f} of it in "
        "the worker's app)"
    )
    if on_postgres:
        print(
            f"  the same on PostgreSQL:      {pg_rate:9.0f} alerts/s  ({pg_rate / raw_rate:.2f} of "
            f"raw, {pg_rate / noop_rate:.2f} of faust doing nothing)"
        )


def worker_groups(args: argparse.Namespace, base: Path, start: datetime) -> None:
    """One worker, then ``args.workers`` in one consumer group, on each store; prints their rates
    and each worker's partitions and records."""
    batch = records(args.alerts, args.groups, start)
    servers = [args.database_url]
    if not args.database_url and args.postgres:
        servers.append(args.postgres)
    for server in servers:
        store = "PostgreSQL" if server else "SQLite"
        one = None
        for count in sorted({1, args.workers}):
            place = base / f"g-{'pg' if server else 'sqlite'}-{count}"
            place.mkdir()
            with store_for(server, place / "bench.db") as url:
                prefix = f"bench-group-{uuid.uuid4().hex[:6]}"
                env = worker_env(args.bootstrap, f"{prefix}-alerts", url, place, args.batch_size)
                run = pipeline_workers.run_group(args.bootstrap, env, count, batch, place)
                # printed before the throw-away database is dropped, so a failed drop loses nothing
                print("\n".join(pipeline_workers.report(store, count, run, one)), flush=True)
            one = one or run


def storm(args: argparse.Namespace, base: Path, start: datetime) -> None:
    """``args.storm`` alerts of one group through the worker: drain time and memory."""
    storm_topic = f"bench-storm-{uuid.uuid4().hex[:6]}"
    asyncio.run(produce(args.bootstrap, storm_topic, records(args.storm, 1, start)))
    (base / "s").mkdir()
    with store_for(args.database_url, base / "s" / "storm.db") as storm_url:
        storm_rate, drained, memory = run_worker(
            args.bootstrap, storm_topic, args.storm, storm_url, base / "s"
        )
    print(
        f"storm: {args.storm} alerts of one group drained in {drained:.1f} s "
        f"({storm_rate:.0f} alerts/s); RSS with {args.storm} open alerts: worker "
        f"{memory[0]:.0f} MB, its outbox relay {memory[1]:.0f} MB (peaks {memory[2]:.0f} and "
        f"{memory[3]:.0f} MB)"
    )


def main() -> None:
    args = parse_args()
    with topics_swept(args.bootstrap), tempfile.TemporaryDirectory(prefix="sevflow-bench-") as tmp:
        base = Path(tmp)
        start = datetime.now(UTC)
        if not args.skip_throughput:
            throughput(args, base, start)
        if args.workers:
            worker_groups(args, base, start)
        if args.storm:
            storm(args, base, start)


if __name__ == "__main__":
    main()
