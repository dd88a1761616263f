"""End-to-end benchmark: the webhook POST → the fake PagerDuty receiving the trigger.

``sevflow run`` (receiver, worker and sinks as three processes, SQLite store unless
``--database-url``) is started against the local broker, with the PagerDuty sink pointed at a
TLS fake in this process. Two scenarios:

* steady: Alertmanager-shaped 1-alert notifications of distinct groups (distinct incidents),
  POSTed at a steady rate (default 200/s); latency = the fake's first receipt of the incident's
  trigger minus the moment its POST started; the receiver's own response time printed beside it.
* storm: N alerts of one group (default 10,000) in 50-alert notifications as fast as the
  receiver takes them: exactly one trigger expected; prints the trigger's latency from the first
  POST and the time until the worker has processed every alert.

Baseline, same run, same broker and fake: the raw clients doing the same hops with nothing else —
an ``AIOKafkaProducer`` (acks=all, idempotent) writing each alert and awaiting its ack, a bare
``AIOKafkaConsumer`` that POSTs a trigger per record with httpx. Prints figures only.

    .venv/bin/python -m bench.e2e_latency [--rate 200] [--seconds 10] [--storm 10000]

``SEVFLOW_*`` variables in the environment are passed on to ``sevflow run`` (to try settings).
"""

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.e2e_figures import (
    alert_bench_id,
    cpu_report,
    cpu_seconds,
    hops,
    opened_bench_id,
    processed,
    record_times,
)
from bench.receiver_common import HttpConnection, encode, request_bytes
from bench.sinks_latency import percentiles
from kafka_admin.topics import ensure_topics
from models.topics import TopicSpec
from testkit.fakes.http import make_certificate
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import Sevflow
from testkit.kafka_io import topics_swept
from testkit.store_backends import throwaway_database

ROUTING_KEY = "B" * 32
STARTS_AT = datetime(2026, 11, 27, 11, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def notification(group: str, alerts: list[str]) -> dict[str, Any]:
    """An Alertmanager v4 notification of one group; ``alerts`` are the bench ids of its alerts."""
    name = f"Bench{group}ServiceDown"
    common = {"alertname": name, "severity": "critical", "service": f"bench-{group}"}
    return {
        "receiver": "sevflow",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {**common, "instance": f"host-{bench_id}:9100", "bench_id": bench_id},
                "annotations": {"summary": f"{name} on host-{bench_id}"},
                "startsAt": STARTS_AT,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
                "fingerprint": uuid.uuid5(uuid.NAMESPACE_URL, bench_id).hex[:16],
            }
            for bench_id in alerts
        ],
        "groupLabels": {"alertname": name},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
    }


def trigger_times(fake: FakePagerDuty) -> dict[str, float]:
    """bench id of the alert that opened each paged incident → the fake's first receipt."""
    seen: dict[str, float] = {}
    for event in list(fake.events):
        if event.get("event_action") != "trigger":
            continue
        details = event["payload"].get("custom_details", {})
        bench_id = details.get("labels", {}).get("bench_id") or details.get("bench_id")
        if bench_id and bench_id not in seen:
            seen[bench_id] = fake.first_seen[event["dedup_key"]]
    return seen


async def wait_until(check: Any, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class Poster:
    """POSTs notifications to the receiver over a pool of lean keep-alive connections
    (bench/receiver_common.py: the load generator must not eat the CPU it measures), recording
    when each alert's POST started and each response time."""

    def __init__(self, sevflow: Sevflow, connections: int = 32) -> None:
        self._sevflow = sevflow
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        self._all = [HttpConnection(sevflow.port) for _ in range(connections)]
        for connection in self._all:
            self._idle.put_nowait(connection)
        self.started: dict[str, float] = {}
        self.answered: list[float] = []
        self.failed: list[int] = []

    async def post(self, document: dict[str, Any]) -> None:
        raw = request_bytes(
            self._sevflow.port, "/webhooks/alertmanager", encode(document), self._sevflow.token
        )
        connection = await self._idle.get()
        try:
            start = time.monotonic()
            for alert in document["alerts"]:
                self.started[alert["labels"]["bench_id"]] = start
            status = await connection.send(raw)
            self.answered.append(time.monotonic() - start)
        finally:
            self._idle.put_nowait(connection)
        if status != 200:
            self.failed.append(status)

    async def close(self) -> None:
        for connection in self._all:
            await connection.close()


async def paced(count: int, rate: float, make: Any) -> None:
    """Start ``make(i)`` at ``rate`` per second without waiting for earlier ones to finish."""
    tasks = []
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make(i)))
    await asyncio.gather(*tasks)


async def steady_sevflow(sevflow: Sevflow, fake: FakePagerDuty, count: int, rate: float) -> None:
    tag = uuid.uuid4().hex[:6]
    poster = Poster(sevflow)
    cpu = cpu_seconds(sevflow)
    base = processed(sevflow)
    stage: dict[str, float] = {}

    async def watch_worker() -> None:
        await wait_until(lambda: processed(sevflow) - base >= count, 300)
        stage["worker"] = time.monotonic()

    watcher: asyncio.Task[None] | None = None
    try:
        began = time.monotonic()
        await paced(count, rate, lambda i: poster.post(notification(f"{tag}x{i}", [f"{tag}-{i}"])))
        stage["posted"] = time.monotonic()
        # Watched from here on: polled while the alerts flow, the worker's /metrics cost it CPU
        # (and the benchmark's loop a request) 20 times a second during the measurement.
        watcher = asyncio.create_task(watch_worker())
        ids = set(poster.started)
        done = await wait_until(lambda: ids <= trigger_times(fake).keys(), 120)
        elapsed = time.monotonic() - began
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), 10)  # its last poll, 50 ms at most
    finally:
        if watcher is not None:
            watcher.cancel()
        await poster.close()
    cpu_after = cpu_seconds(sevflow)
    seen = trigger_times(fake)
    latencies = [seen[i] - poster.started[i] for i in ids if i in seen]
    print(f"  {'sevflow (POST -> trigger)':30s} {percentiles(latencies)}  "
          f"{'' if done else 'INCOMPLETE '}elapsed={elapsed:.1f}s")  # fmt: skip
    print(f"  {'  receiver response time':30s} {percentiles(poster.answered)}  "
          f"non-200={len(poster.failed)}")  # fmt: skip
    print(f"  {'  CPU used':30s} {cpu_report(cpu, cpu_after, count)}")
    bootstrap = sevflow.kafka_bootstrap
    alerts = await record_times(bootstrap, sevflow.alerts_topic, alert_bench_id)
    opened = await record_times(bootstrap, f"e2e-events-{sevflow.suffix}", opened_bench_id)
    hop_text = hops(poster.started, ("receiver -> alerts topic", alerts),
                    ("worker -> incident-events", opened), ("sink -> PagerDuty", seen))  # fmt: skip
    print(f"  {'  median hops':30s} {hop_text}")
    ordered = sorted(stage.items(), key=lambda item: item[1])
    marks = ", ".join(f"{name} done after {t - began:.1f}s" for name, t in ordered)
    print(f"  {'  stages':30s} {marks}")


async def steady_raw(bootstrap: str, fake: FakePagerDuty, cert: Path, count: int, rate: float) -> None:
    topic = f"bench-raw-e2e-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, 8)])
    tag = uuid.uuid4().hex[:6]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{tag}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert)), timeout=10)
    started: dict[str, float] = {}
    acked: list[float] = []
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            for messages in batch.values():
                for message in messages:
                    bench_id = message.key.decode()
                    payload = {"summary": f"raw {bench_id}", "source": "bench", "severity": "critical",
                               "custom_details": {"bench_id": bench_id}}  # fmt: skip
                    body = {"routing_key": ROUTING_KEY, "event_action": "trigger",
                            "dedup_key": bench_id, "payload": payload}  # fmt: skip
                    await http.post(f"{fake.url}/v2/enqueue", json=body)
            if batch:
                await consumer.commit()

    async def send(i: int) -> None:
        bench_id = f"raw{tag}-{i}"
        value = json.dumps(notification(f"raw{tag}x{i}", [bench_id])["alerts"][0]).encode()
        start = started[bench_id] = time.monotonic()
        await (await producer.send(topic, key=bench_id.encode(), value=value))
        acked.append(time.monotonic() - start)

    await producer.start()
    await consumer.start()
    reader = asyncio.create_task(consume())
    try:
        await asyncio.sleep(3)  # the consumer joined its group
        began = time.monotonic()
        await paced(count, rate, send)
        done = await wait_until(lambda: started.keys() <= trigger_times(fake).keys(), 120)
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        await reader
        await consumer.stop()
        await producer.stop()
        await http.aclose()
    seen = trigger_times(fake)
    latencies = [seen[i] - started[i] for i in started if i in seen]
    print(f"  {'raw aiokafka + httpx':30s} {percentiles(latencies)}  "
          f"{'' if done else 'INCOMPLETE '}elapsed={elapsed:.1f}s")  # fmt: skip
    print(f"  {'  producer ack time':30s} {percentiles(acked)}")


async def storm(sevflow: Sevflow, fake: FakePagerDuty, alerts: int, per_post: int) -> None:
    tag = uuid.uuid4().hex[:6]
    group = f"storm{tag}"
    ids = [f"{tag}-{i}" for i in range(alerts)]
    documents = [notification(group, ids[i : i + per_post]) for i in range(0, alerts, per_post)]
    before = processed(sevflow)
    cpu = cpu_seconds(sevflow)
    poster = Poster(sevflow)
    limit = asyncio.Semaphore(8)  # Alertmanager-like: a few notifications in flight at a time

    async def post(document: dict[str, Any]) -> None:
        async with limit:
            await poster.post(document)

    try:
        began = time.monotonic()
        await asyncio.gather(*(post(d) for d in documents))
        accepted = time.monotonic() - began
        drained = await wait_until(lambda: processed(sevflow) - before >= alerts, 300)
        drain_time = time.monotonic() - began
        cpu_after = cpu_seconds(sevflow)
        await asyncio.sleep(2)  # any duplicate trigger would arrive by now
    finally:
        await poster.close()
    key = f'"Bench{group}ServiceDown"}}'
    triggers = [e for e in list(fake.events) if e["event_action"] == "trigger"
                and e["payload"]["custom_details"].get("group_key", "").endswith(key)]  # fmt: skip
    first = min((fake.first_seen[e["dedup_key"]] for e in triggers), default=None)
    latency = f"{(first - began) * 1000:.1f} ms" if first is not None else "none"
    print(f"  {alerts} alerts in {len(documents)} notifications: accepted in {accepted:.1f}s, "
          f"{'processed' if drained else 'NOT processed'} in {drain_time:.1f}s; "
          f"triggers={len(triggers)} (first after {latency})")  # fmt: skip
    print(f"  {'  receiver response time':30s} {percentiles(poster.answered)}  "
          f"non-200={len(poster.failed)}")  # fmt: skip
    print(f"  {'  CPU used':30s} {cpu_report(cpu, cpu_after, alerts)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--rate", type=float, default=200.0, help="alerts per second (steady)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the steady scenario")
    parser.add_argument(
        "--storm", type=int, default=10_000, help="alerts of the one-group storm (0: none)"
    )
    parser.add_argument("--per-post", type=int, default=50, help="alerts per notification (storm)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to run on, in a throw-away database created beside the one the "
        "URL names (its role needs CREATEDB; default: an SQLite file)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        stack.enter_context(topics_swept(args.bootstrap))
        if args.database_url:  # never the named database: a run starts empty and leaves nothing
            server = args.database_url
            args.database_url = stack.enter_context(throwaway_database(server, "sevflow_bench"))
        asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    """Both scenarios against one fake PagerDuty."""
    with tempfile.TemporaryDirectory(prefix="sevflow-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = make_certificate(workdir)
        fake = FakePagerDuty((cert, key)).start()
        sevflow = Sevflow(
            workdir,
            args.bootstrap,
            args.database_url or f"sqlite:///{workdir / 'sevflow.db'}",
            extra_env={
                "SEVFLOW_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                "SEVFLOW_PAGERDUTY_BASE_URL": fake.url,
                "SEVFLOW_PAGERDUTY_CA_FILE": str(cert),
                "SEVFLOW_LOG_LEVEL": "WARNING",
                **{name: value for name, value in os.environ.items() if name.startswith("SEVFLOW_")},
            },
        )
        try:
            sevflow.start()
            print(f"store: {'PostgreSQL' if args.database_url else 'SQLite'}; "
                  f"sevflow run (receiver, worker, sinks) -> fake PagerDuty over TLS")  # fmt: skip
            warm = Poster(sevflow)
            await warm.post(notification(f"warm{uuid.uuid4().hex[:6]}", [f"warm-{uuid.uuid4().hex}"]))
            await warm.close()
            if not await wait_until(lambda: warm.started.keys() <= trigger_times(fake).keys(), 120):
                raise SystemExit(f"no trigger for the warm-up alert; see {sevflow.log_path}")
            count = int(args.rate * args.seconds)
            print(f"steady: {count} alerts of distinct groups at {args.rate:.0f}/s, one per POST")
            await steady_sevflow(sevflow, fake, count, args.rate)
            await steady_raw(args.bootstrap, fake, cert, count, args.rate)
            if args.storm:
                print(f"storm: {args.storm} alerts of one group, {args.per_post} per POST, 8 in flight")
                await storm(sevflow, fake, args.storm, args.per_post)
        finally:
            sevflow.stop()
            fake.close()


if __name__ == "__main__":
    main()
