"""One and several ``sevflow worker`` processes in one consumer group, fresh and re-sent alerts.

For each worker count: a fresh alerts topic of ``SEVFLOW_TOPIC_PARTITIONS`` (8) partitions and an
empty store; the workers are started in one consumer group (their own data directories and
/metrics ports, the same database) and the benchmark waits until the group is ``Stable`` with
every worker holding partitions of the alerts topic. Only then are the records written, so no
worker starts alone and no rebalance falls inside the measurement:

- **fresh**: N alerts of G groups, interleaved (bench/pipeline_bench.py ``records``);
- **re-sent**: then N records as Alertmanager re-sends firing groups (bench/pipeline_alone.py
  ``resent``: 90 % repeats, which store no alert row, 10 % new alerts).

Progress is read from the store itself: ``partition_progress.next_offset`` is written in the
transaction that applies a batch, so its sum over the partitions is the number of records applied
(repeats included). Each rate is taken from the first batch of a phase applied to its last, and
given also per CPU-second of the workers and their outbox relays over the phase (from /proc:
the box is shared, and the CPU figure moves less with the neighbours' load). The
writer runs while the workers apply (on the same cores); it takes well under a second for 20,000
records.

Per worker: the partitions of the alerts topic the group's coordinator says it holds (Kafka's
DescribeGroups; faust's assignor writes Kafka's consumer-protocol assignment) and the records it
applied (``sevflow_worker_alerts_processed_total`` on its /metrics). The two are matched through
the store: the records applied on a worker's partitions (``next_offset``) equal its counter when
the assignment held for the whole run. The benchmark stops with a message naming the worker when
one holds no partition or applied nothing; it asserts no speed.
"""

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from bench.pipeline_alone import resent
from kafka_admin.topics import ensure_topic
from models.alert import AlertRecord
from store.db import normalise_url
from store.schema import partition_progress
from testkit.local import REPO, free_port
from testkit.local_http import local_get
from testkit.processes import metric_sum, stop_process

__all__ = ["GroupRun", "WorkerShare", "cpu_seconds", "report", "run_group"]

#: Seconds the workers may take to start and be given their partitions on the loaded box.
JOIN_SECONDS = 240.0
#: Seconds a phase may take before the benchmark gives up.
PHASE_SECONDS = 900.0


@dataclass(frozen=True)
class WorkerShare:
    """One worker of a run: the alerts-topic partitions it held and the records it applied."""

    partitions: tuple[int, ...]
    applied: int
    #: Records applied on ``partitions``, read from the store (None: no member matched).
    on_its_partitions: int | None


@dataclass(frozen=True)
class GroupRun:
    """Alerts/s of the fresh and the re-sent phase, and each worker's share."""

    fresh: float
    resent: float
    workers: list[WorkerShare]
    #: Alerts per CPU-second of the workers and their relays, fresh and re-sent.
    fresh_cpu: float
    resent_cpu: float


def _applied(engine: Engine) -> dict[int, int]:
    """The next offset to apply per alerts-topic partition (empty before the tables exist)."""
    query = select(partition_progress.c.partition, partition_progress.c.next_offset)
    try:
        with engine.connect() as conn:
            return {int(p): int(o or 0) for p, o in conn.execute(query)}
    except SQLAlchemyError:
        return {}


async def _members(bootstrap: str, group: str, topic: str) -> tuple[str, list[tuple[int, ...]]]:
    """The group's state and, per member, the partitions of ``topic`` it was assigned."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        # DescribeGroups v0+: (error_code, group_id, state, protocol_type, protocol, members, ...);
        # a member: (member_id, client_id, client_host, metadata, assignment)
        (described,) = response.groups
        held = []
        for member in described[5]:
            raw = member[-1]
            decoded = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
            parts = [tp.partition for tp in decoded.partitions() if tp.topic == topic] if decoded else []
            held.append(tuple(sorted(parts)))
        return str(described[2]), held
    finally:
        await admin.close()


def _wait_assigned(
    bootstrap: str, group: str, topic: str, processes: Sequence[subprocess.Popen[bytes]], logs: str
) -> list[tuple[int, ...]]:
    """Wait until the group is Stable with one member per worker, each holding a partition of
    ``topic``; stop the benchmark saying what was seen instead."""
    deadline = time.monotonic() + JOIN_SECONDS
    seen: tuple[str, list[tuple[int, ...]]] = ("not described yet", [])
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"a worker exited before it was assigned partitions: see {logs}")
        try:
            seen = asyncio.run(_members(bootstrap, group, topic))
        except (KafkaError, OSError, TimeoutError) as exc:  # the broker busy: describe again
            seen = (f"{type(exc).__name__}: {exc}", [])
        state, held = seen
        if state == "Stable" and len(held) == len(processes) and all(held):
            return held
        time.sleep(0.5)
    raise SystemExit(
        f"{len(processes)} workers: not every worker was assigned a partition of {topic} within "
        f"{JOIN_SECONDS:.0f} s (group {group}: state {seen[0]}, partitions per member {seen[1]})"
    )


async def produce_records(bootstrap: str, topic: str, batch: Sequence[AlertRecord]) -> None:
    """Write ``batch`` to ``topic`` as the receiver does (keyed by fingerprint, acks=all,
    idempotent), batched for speed; returns once every record is acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=r.fingerprint.encode(), value=r.to_bytes()) for r in batch
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _phase(
    bootstrap: str,
    topic: str,
    batch: Sequence[AlertRecord],
    engine: Engine,
    processes: Sequence[subprocess.Popen[bytes]],
    logs: str,
) -> float:
    """Write ``batch``; alerts/s from the first of its batches applied to the last."""
    base = sum(_applied(engine).values())
    target = base + len(batch)
    asyncio.run(produce_records(bootstrap, topic, batch))
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + PHASE_SECONDS
    while True:
        done = sum(_applied(engine).values())
        now = time.perf_counter()
        if first is None and done > base:
            first = (now, done)
        if done >= target:
            break
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"a worker exited: see {logs}")
        if time.monotonic() > deadline:
            raise SystemExit(f"workers too slow: {done - base}/{len(batch)} after {PHASE_SECONDS:.0f} s")
        time.sleep(0.05)
    assert first is not None
    return (target - first[1]) / max(now - first[0], 1e-9)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` and the processes they started (the relays)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            started = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            for each in [pid, *map(int, started)]:
                fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except FileNotFoundError:  # exited: its CPU is not counted
            continue
    return total


def _applied_by(port: int) -> int:
    """``sevflow_worker_alerts_processed_total`` of the worker serving /metrics on ``port``."""
    text = local_get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return int(metric_sum(text, "sevflow_worker_alerts_processed_total"))


def _shares(
    held: Sequence[tuple[int, ...]], applied: Sequence[int], progress: dict[int, int]
) -> list[WorkerShare]:
    """Pair each worker's counter with the member whose partitions applied as many records."""
    left = list(held)
    out = []
    for count in applied:
        match = next((h for h in left if sum(progress.get(p, 0) for p in h) == count), None)
        if match is not None:
            left.remove(match)
        parts = match if match is not None else ()
        stored = sum(progress.get(p, 0) for p in parts) if match is not None else None
        out.append(WorkerShare(parts, count, stored))
    for worker, share in enumerate(out):  # unmatched: the assignment changed during the run
        if share.on_its_partitions is None and left:
            out[worker] = WorkerShare(left.pop(0), share.applied, None)
    return out


def run_group(
    bootstrap: str,
    env: dict[str, str],
    workers: int,
    batch: Sequence[AlertRecord],
    data_dir: Path,
) -> GroupRun:
    """``workers`` worker processes with ``env`` (one consumer group, one store) over ``batch``
    fresh and as many re-sent records on a new alerts topic; stops the benchmark if a worker
    held no partition or applied no record."""
    topic = env["SEVFLOW_ALERTS_TOPIC"]
    partitions = int(env.get("SEVFLOW_TOPIC_PARTITIONS", "8"))
    asyncio.run(ensure_topic(bootstrap, topic, partitions))
    engine = create_engine(normalise_url(env["SEVFLOW_DATABASE_URL"], asynchronous=False))
    ports = [free_port() for _ in range(workers)]
    processes: list[subprocess.Popen[bytes]] = []
    logs = str(data_dir / "worker-*.log")
    try:
        for i, port in enumerate(ports):
            own = data_dir / f"worker-{i}"
            own.mkdir()
            with (data_dir / f"worker-{i}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "sevflow", "worker"],
                        cwd=REPO,
                        env={
                            **env,
                            "SEVFLOW_DATA_DIR": str(own),
                            "SEVFLOW_WORKER_METRICS_PORT": str(port),
                        },
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        held = _wait_assigned(bootstrap, env["SEVFLOW_APP_ID"], topic, processes, logs)
        pids = [p.pid for p in processes]
        cpu = [cpu_seconds(pids)]
        fresh = _phase(bootstrap, topic, batch, engine, processes, logs)
        cpu.append(cpu_seconds(pids))
        again = resent(batch, len(batch), timedelta(minutes=5))
        repeat = _phase(bootstrap, topic, again, engine, processes, logs)
        cpu.append(cpu_seconds(pids))
        applied = [_applied_by(port) for port in ports]
        progress = _applied(engine)
    finally:
        for process in processes:
            stop_process(process, 30)
        engine.dispose()
    shares = _shares(held, applied, progress)
    for i, share in enumerate(shares):
        if not share.partitions or share.applied < 1:
            raise SystemExit(
                f"{workers} workers: worker {i} held partitions {share.partitions} of {topic} and "
                f"applied {share.applied} records: not every worker consumed (see {logs})"
            )
    per_cpu = [len(batch) / max(b - a, 1e-9) for a, b in itertools.pairwise(cpu)]
    return GroupRun(fresh, repeat, shares, per_cpu[0], per_cpu[1])


def report(store: str, count: int, run: GroupRun, one: GroupRun | None) -> list[str]:
    """Lines for a run of ``count`` workers on ``store``, beside ``one`` worker's run."""
    ratio = f" ({run.fresh / one.fresh:.2f} / {run.resent / one.resent:.2f} of one)" if one else ""
    lines = [
        f"{count} worker(s), {store:10s} fresh {run.fresh:7.0f} alerts/s "
        f"({run.fresh_cpu:6.0f}/CPU-s), re-sent (90 % repeats) {run.resent:7.0f} alerts/s "
        f"({run.resent_cpu:6.0f}/CPU-s){ratio}"
    ]
    for i, share in enumerate(run.workers):
        check = (
            "matches the store"
            if share.on_its_partitions == share.applied
            else "the assignment changed during the run: not matched to the store"
        )
        lines.append(
            f"    worker {i}: partitions {list(share.partitions)}, applied {share.applied} "
            f"records ({check})"
        )
    return lines
