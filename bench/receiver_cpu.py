"""Where the receiver's CPU goes in a storm: its app in this process, with and without Kafka.

    .venv/bin/python -m bench.receiver_cpu [--payloads 3000] [--alerts-per-payload 5]
                                           [--concurrency 3000] [--rounds 3]

``bench.receiver_storm`` times a real Alertmanager against ``sevflow receiver``; its figure moves
with everything else on the box (Alertmanager, the broker, the neighbours). This one takes the
HTTP server and the connections out and measures CPU time per alert of this process, which moves
far less, for three ways of taking the same Alertmanager-shaped payloads (a storm's: every
payload in flight at once, ``--concurrency``):

1. **the receiver's app**: the ASGI app ``sevflow receiver`` serves, built by
   :func:`receiver.app.create_app` with the publisher ``sevflow receiver`` makes (acks=all,
   idempotent, to a fresh alerts topic of the broker), each payload a ``POST`` through its whole
   webhook path (auth, body, validation, records, admission, publish, answer); the collector
   settled as the role settles it;
2. **the same app, publishing nothing**: a publisher that accepts every record at once, so the
   figure is the receiver's own work without Kafka (what the first figure costs beyond it is the
   publish);
3. **raw aiokafka**: the same payloads' records sent by a bare producer with the same settings,
   driven as the receiver's publisher drives it (each record's partition named, one wait per
   partition: ``bench.receiver_http.send_batch``), at the same concurrency: the raw-client
   baseline for the publish.

Each figure is the best of ``--rounds`` rounds (after one warm-up round) of every payload once.
Every answer must be a 200, or the benchmark stops. Prints figures; asserts nothing.
"""

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.receiver_common import encode, payload
from bench.receiver_http import send_batch
from kafka_admin.topics import ensure_topic
from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from models.clock import utc_now
from models.record_limits import ALERT_BATCH_BYTES
from models.settings import Settings
from receiver.app import create_app
from receiver.kafka import KafkaAlertPublisher, PublishResult, record_bytes
from receiver.metrics import ReceiverMetrics
from receiver.ratelimit import RateLimiter
from receiver.webhook import WEBHOOK_PATH
from sevflow.roles.collector import settle_collector
from sevflow.roles.receiver import receiver_credentials
from testkit.kafka_io import topics_swept

__all__ = ["AcceptingPublisher", "app_cpu", "raw_cpu"]

App = Callable[..., Awaitable[None]]
_TOKEN = "bench-receiver-cpu-token-0123456789"


class AcceptingPublisher:
    """A publisher that takes every record at once and writes nothing (figure 2)."""

    async def publish(self, records: Sequence[AlertRecord]) -> PublishResult:
        return PublishResult(len(records), 0)

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        pass

    async def ready(self) -> bool:
        return True


async def _post(app: App, body: bytes) -> int:
    """One webhook POST through ``app`` as uvicorn hands it over; the answer's status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": WEBHOOK_PATH,
        "raw_path": WEBHOOK_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"user-agent", b"Alertmanager/0.27.0"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {_TOKEN}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    delivered = asyncio.Event()
    status = 0

    async def receive() -> dict[str, Any]:
        if not delivered.is_set():
            delivered.set()
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # (the client stays connected)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _rounds(run: Callable[[], Awaitable[None]], rounds: int, alerts: int) -> float:
    """The lowest CPU time per alert (µs) of ``rounds`` runs, after a warm-up run."""
    await run()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        await run()
        best = min(best, (time.process_time() - started) / alerts * 1e6)
    return best


async def app_cpu(
    bodies: Sequence[bytes], bootstrap: str, concurrency: int, rounds: int, *, kafka: bool
) -> float:
    """µs of CPU per alert for the receiver's app over ``bodies`` (figures 1 and 2)."""
    settings = Settings()
    publisher: KafkaAlertPublisher | AcceptingPublisher
    if kafka:
        topic = f"bench-receiver-cpu-{uuid.uuid4().hex[:8]}"
        # As sevflow.roles.receiver.build_receiver makes it, on a fresh topic.
        publisher = KafkaAlertPublisher(
            bootstrap,
            topic,
            settings.topic_partitions,
            settings.kafka_timeout_seconds,
            retry_dedup_seconds=settings.retry_dedup_seconds,
            spec=settings.topic_spec(topic),
        )
    else:
        publisher = AcceptingPublisher()
    app = create_app(
        publisher=publisher,
        auth=receiver_credentials(settings),
        now=utc_now,
        metrics=ReceiverMetrics(),
        rate_limiter=RateLimiter(0, 1),
        max_concurrent_publishes=settings.max_concurrent_publishes,
        publish_queue_seconds=settings.publish_queue_seconds,
    )
    alerts = sum(len(json.loads(b)["alerts"]) for b in bodies)
    slots = asyncio.Semaphore(concurrency)

    async def one(body: bytes) -> int:
        async with slots:
            return await _post(app, body)

    async def run() -> None:
        answers = await asyncio.gather(*(one(b) for b in bodies))
        refused = [a for a in answers if a != 200]
        if refused:
            raise SystemExit(f"the receiver answered {sorted(set(refused))} to {len(refused)} payloads")

    settle_collector((20_000,))  # as sevflow.roles.receiver settles it
    try:
        return await _rounds(run, rounds, alerts)
    finally:
        if isinstance(publisher, KafkaAlertPublisher):
            await publisher.close()


async def raw_cpu(bodies: Sequence[bytes], bootstrap: str, concurrency: int, rounds: int) -> float:
    """µs of CPU per alert for a bare producer sending the payloads' records (figure 3)."""
    now = datetime.now(UTC)
    batches = [
        [
            (r.fingerprint.encode(), record_bytes(r))
            for r in to_records(WebhookPayload.model_validate_json(b), now)
        ]
        for b in bodies
    ]
    topic = f"bench-receiver-cpu-raw-{uuid.uuid4().hex[:8]}"
    settings = Settings()
    await ensure_topic(bootstrap, settings.topic_spec(topic))
    producer = AIOKafkaProducer(  # the receiver's publisher's settings (receiver/kafka.py)
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=ALERT_BATCH_BYTES,
        request_timeout_ms=int(settings.kafka_timeout_seconds * 1000),
    )
    await producer.start()
    slots = asyncio.Semaphore(concurrency)

    async def one(batch: list[tuple[bytes, bytes]]) -> None:
        async with slots:
            await send_batch(producer, topic, batch, partitioned=True)

    async def run() -> None:
        await asyncio.gather(*(one(b) for b in batches))

    try:
        return await _rounds(run, rounds, sum(len(b) for b in batches))
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payloads", type=int, default=3000)
    parser.add_argument("--alerts-per-payload", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=3000, help="payloads in flight at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap", default=os.environ.get("SEVFLOW_TEST_KAFKA", "127.0.0.1:19092"))
    args = parser.parse_args()
    bodies = [encode(payload(i, args.alerts_per_payload)) for i in range(args.payloads)]
    with topics_swept(args.bootstrap), tempfile.TemporaryDirectory(prefix="sevflow-rcpu-") as tmp:
        os.environ.update(
            SEVFLOW_DATA_DIR=tmp,
            SEVFLOW_KAFKA_BOOTSTRAP=args.bootstrap,
            SEVFLOW_WEBHOOK_TOKENS=_TOKEN,
            SEVFLOW_API_TOKENS=f"bench:read:{_TOKEN}-api",  # (the API is not used)
        )
        # A fresh topic's first sends meet leaders still being elected; aiokafka retries them.
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
        how = (bodies, args.bootstrap, args.concurrency, args.rounds)
        app = asyncio.run(app_cpu(*how, kafka=True))
        own = asyncio.run(app_cpu(*how, kafka=False))
        raw = asyncio.run(raw_cpu(*how))
    print(
        f"receiver CPU per alert, {args.payloads} payloads of {args.alerts_per_payload} alerts, "
        f"{args.concurrency} in flight (best of {args.rounds}; load average {os.getloadavg()[0]:.2f})"
    )
    print(f"  the receiver's app, publishing to Kafka (acks=all): {app:7.1f} µs")
    print(f"  the same app, publishing nothing:                  {own:7.1f} µs")
    print(f"  its publish (the difference):                      {app - own:7.1f} µs")
    print(f"  raw aiokafka, the same records, driven alike:      {raw:7.1f} µs")
    print(f"  the publish against raw aiokafka: {(app - own) / raw:.2f} x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
