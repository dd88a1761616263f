"""A worker whose consumer joins its group while the broker is away again (a crash right after
a restart) consumes once the broker is back, within seconds, not minutes.

faust's assignor leaves out topics missing from the consumer's metadata: joining while the
broker was away, the worker got an empty assignment, and kept it until aiokafka refreshed its
metadata (every 5 minutes by default). Alerts answered 200 waited that long, and the stall watch,
counting only assigned partitions, saw nothing to wait for. The worker's consumer refreshes its
metadata every few seconds (streams/app.py), so the missing topics are found and the group
rebalances.
"""

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from kafka_admin.topics import ensure_topic
from store.db import normalise_url
from testkit.harness import PrivateKafka, role_env, stored_alerts, wait_for
from testkit.local import REPO
from tests.builders import alert
from tests.integration.test_worker_failures import produce

pytestmark = pytest.mark.integration

#: How long the worker may take to consume again once the broker is back (the bug: 300 s).
RECOVERY_SECONDS = 60
ROUNDS = 3


def test_a_worker_that_joined_while_the_broker_was_away_consumes_once_it_is_back(
    tmp_path: Path,
) -> None:
    kafka = PrivateKafka(tmp_path / "kafka-home").start()
    suffix = uuid.uuid4().hex[:8]
    topic = f"flap-alerts-{suffix}"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = role_env(
        kafka.bootstrap, f"flap-{suffix}", url, tmp_path / "data",
        alerts_topic=topic, topic_partitions="2", log_level="INFO", kafka_timeout_seconds="3",
    )  # fmt: skip
    engine = create_engine(normalise_url(url, asynchronous=False))
    log = tmp_path / "worker.log"
    t0 = datetime.now(UTC)

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "sevflow", "worker"], cwd=REPO, env=env, stdout=out, stderr=out
            )

    def batch(name: str, count: int, second: int) -> list:  # type: ignore[type-arg]
        return [
            alert(f"{name}{n}", at=t0 + timedelta(seconds=second, milliseconds=n)) for n in range(count)
        ]

    worker = start()
    try:
        asyncio.run(ensure_topic(kafka.bootstrap, topic, 2))
        asyncio.run(produce(kafka.bootstrap, topic, batch("Before", 10, 0)))
        wait_for(lambda: stored_alerts(engine) == 10, 90, f"the first alerts stored (log {log})")

        # A crash of the worker and the broker together; the worker starts again on the broker
        # back, and the broker crashes again just as the new worker's consumer starts. Whether
        # the consumer then meets a broker still without its topics is a race: three rounds.
        stored, empty = 10, 0
        for round_ in range(ROUNDS):
            worker.kill()
            worker.wait()
            kafka.kill()
            kafka.start()
            seen = len(log.read_bytes())
            worker = start()
            wait_for(
                lambda seen=seen: b"Consumer]: Starting" in log.read_bytes()[seen:],
                90,
                f"the consumer (log {log})",
            )
            time.sleep(0.5)
            kafka.kill()
            time.sleep(3)
            kafka.start()
            asyncio.run(produce(kafka.bootstrap, topic, batch(f"After{round_}-", 10, round_ + 1)))
            stored += 10
            started = time.monotonic()
            wait_for(
                lambda stored=stored: stored_alerts(engine) == stored,
                RECOVERY_SECONDS,
                f"round {round_}: the alerts sent after the broker came back stored (log {log})",
            )
            empty += f"missing topic: '{topic}'".encode() in log.read_bytes()[seen:]
            print(f"round {round_}: consumed again {time.monotonic() - started:.1f} s after")
        print(f"{empty} of {ROUNDS} rounds joined without the alerts topic")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        engine.dispose()
        kafka.stop()
