"""Alerts per second accepted end to end over HTTP (acks=all), next to a raw aiokafka producer.

    .venv/bin/python -m bench.receiver_http [--seconds 10] [--concurrency 8]

Starts ``sevflow receiver`` as a child process against the local broker (scripts/kafka.sh start),
posts Alertmanager-shaped payloads of 1 and 50 alerts from concurrent keep-alive connections for a
fixed time, and counts the alerts answered 200 (each 200 means Kafka acknowledged every record of
the payload). In the same run a raw ``AIOKafkaProducer`` (acks=all, idempotent, the receiver's own
settings) sends the same records, the same number per await, with the same concurrency: the ceiling
the receiver's HTTP, auth, validation and bookkeeping are measured against. It runs twice: the plain
way (default partitioner, ``gather`` over every future) and driven as the receiver's publisher
drives it (its own partitioner, one wait per partition), faster (fewer callbacks per record); the second
ratio is the receiver's own overhead. Prints figures; it asserts nothing.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.receiver_common import HttpConnection, encode, payload, request_bytes
from kafka_admin.topics import ensure_topic
from models.alertmanager import WebhookPayload, to_records
from receiver.partitioner import partition_for
from testkit.harness import Sevflow
from testkit.kafka_io import topics_swept

POOL = 400  # distinct payloads cycled through, so fingerprints vary


async def http_load(port: int, token: str, size: int, seconds: float, concurrency: int) -> float:
    bodies = [
        request_bytes(port, "/webhooks/alertmanager", encode(payload(i, size)), token)
        for i in range(POOL)
    ]
    accepted = 0
    errors: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal accepted
        connection = HttpConnection(port)
        i = offset
        try:
            while time.perf_counter() < stop_at:
                status = await connection.send(bodies[i % POOL])
                i += concurrency
                if status == 200:
                    accepted += size
                else:
                    errors[status] = errors.get(status, 0) + 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"    non-200 answers: {errors}", file=sys.stderr)
    return accepted / elapsed


def record_pool(size: int) -> list[list[tuple[bytes, bytes]]]:
    """``POOL`` webhook payloads of ``size`` alerts each, as the (key, value) records the
    receiver would produce for them."""
    now = datetime.now(UTC)
    return [
        [
            (r.fingerprint.encode(), r.to_bytes())
            for r in to_records(WebhookPayload.model_validate(payload(i, size)), now)
        ]
        for i in range(POOL)
    ]


async def send_batch(
    producer: AIOKafkaProducer, topic: str, batch: list[tuple[bytes, bytes]], *, partitioned: bool
) -> None:
    """Send ``batch`` and wait until Kafka acknowledged all of it (see :func:`raw_producer`)."""
    if partitioned:
        partitions = sorted(await producer.partitions_for(topic))
        futures, last = [], {}
        for k, v in batch:
            partition = partition_for(k, partitions)
            future = await producer.send(topic, key=k, value=v, partition=partition)
            futures.append(future)
            last[partition] = future
        await asyncio.wait(last.values())
        await asyncio.gather(*(f for f in futures if not f.done()))
        for future in futures:
            future.result()  # raises if Kafka refused it
    else:
        futures = [await producer.send(topic, key=k, value=v) for k, v in batch]
        await asyncio.gather(*futures)


async def raw_producer(
    bootstrap: str, size: int, seconds: float, concurrency: int, *, partitioned: bool = False
) -> float:
    """Alerts/s acknowledged from a bare producer. ``partitioned``: drive it as the receiver does
    (names each record's partition, waits on the last record per partition, then checks all)
    rather than the plain way (default partitioner, ``gather`` over every record's future)."""
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await ensure_topic(bootstrap, topic, 8)
    batches = record_pool(size)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    sent = 0
    stop_at = 0.0

    async def worker(offset: int) -> None:
        nonlocal sent
        i = offset
        while time.perf_counter() < stop_at:
            await send_batch(producer, topic, batches[i % POOL], partitioned=partitioned)
            sent += size
            i += concurrency

    try:
        # Warm-up as for HTTP: a fresh topic's partition leaders settle, connections are made.
        stop_at = time.perf_counter() + 2
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        sent = 0
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return sent / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bootstrap", default=os.environ.get("SEVFLOW_TEST_KAFKA", "127.0.0.1:19092"))
    args = parser.parse_args()
    with topics_swept(args.bootstrap), tempfile.TemporaryDirectory() as tmp:
        sevflow = Sevflow(
            Path(tmp),
            args.bootstrap,
            f"sqlite:///{tmp}/unused.db",
            command="receiver",
            extra_env={"SEVFLOW_LOG_LEVEL": "WARNING", "SEVFLOW_RATE_LIMIT_PER_SECOND": "0"},
        )
        sevflow.start()
        try:
            print(
                f"receiver benchmark: {args.seconds:.0f}s per run, {args.concurrency} connections, "
                f"acks=all, {os.cpu_count()} cores shared by load generator, receiver and broker"
            )
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            for size in (1, 50):
                asyncio.run(http_load(sevflow.port, sevflow.token, size, 2, args.concurrency))  # warm-up
                via_http = asyncio.run(
                    http_load(sevflow.port, sevflow.token, size, args.seconds, args.concurrency)
                )
                raw = asyncio.run(raw_producer(args.bootstrap, size, args.seconds, args.concurrency))
                tuned = asyncio.run(
                    raw_producer(args.bootstrap, size, args.seconds, args.concurrency, partitioned=True)
                )
                print(
                    f"{size:>2} alerts/payload: sevflow over HTTP {via_http:8.0f} alerts/s | "
                    f"raw aiokafka {raw:8.0f} alerts/s | ratio {via_http / raw:.2f} | "
                    f"raw aiokafka driven as the receiver drives it {tuned:8.0f} alerts/s | "
                    f"ratio {via_http / tuned:.2f}"
                )
            print(
                f"load average after: {os.getloadavg()[0]:.2f} (other work on the box skews the figures)"
            )
        finally:
            sevflow.stop()


if __name__ == "__main__":
    main()
