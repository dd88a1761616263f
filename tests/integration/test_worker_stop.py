"""A worker asked to stop while Kafka is down stops anyway, and so does its relay process.

faust waits for its consumer's last offset commit, which never returns while the broker is away:
SIGTERM left the worker running (minutes, until SIGKILL), and ``sevflow run`` waiting for it. The
worker exits once sevflow.roles.worker.WORKER_STOP_DEADLINE has passed; nothing is lost (only applied
records have committed offsets), which the restart on the same broker shows.
"""

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from kafka_admin.topics import ensure_topic
from sevflow.roles.worker import WORKER_STOP_DEADLINE
from store.db import normalise_url
from testkit.harness import PrivateKafka, role_env, stored_alerts, wait_for
from testkit.local import REPO
from tests.builders import alert
from tests.integration.test_relay_process import _children, _running
from tests.integration.test_worker_failures import produce

pytestmark = pytest.mark.integration


def _relays_until_exit(worker: subprocess.Popen[bytes], seconds: float) -> set[int]:
    """The relay processes ``worker`` ran (it starts one again when one dies) until it exited,
    or ``seconds`` passed."""
    relays: set[int] = set()
    deadline = time.monotonic() + seconds
    while worker.poll() is None and time.monotonic() < deadline:
        relays.update(_children(worker.pid))
        time.sleep(0.1)
    return relays


def test_sigterm_while_kafka_is_down_stops_the_worker(tmp_path: Path) -> None:
    kafka = PrivateKafka(tmp_path / "kafka-home").start()
    suffix = uuid.uuid4().hex[:8]
    topic = f"stop-alerts-{suffix}"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = role_env(
        kafka.bootstrap,
        f"stop-{suffix}",
        url,
        tmp_path / "data",
        alerts_topic=topic,
        topic_partitions="2",
    )
    t0 = datetime.now(UTC)
    first = [alert(f"Stop{n}", at=t0 + timedelta(milliseconds=n)) for n in range(20)]
    engine = create_engine(normalise_url(url, asynchronous=False))

    log = tmp_path / "worker.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "sevflow", "worker"], cwd=REPO, env=env, stdout=out, stderr=out
            )

    worker = start()
    try:
        asyncio.run(ensure_topic(kafka.bootstrap, topic, 2))
        asyncio.run(produce(kafka.bootstrap, topic, first))
        wait_for(lambda: stored_alerts(engine) == 20, 60, f"the first alerts stored (log {log})")
        kafka.stop()
        worker.send_signal(signal.SIGTERM)
        relays = _relays_until_exit(worker, WORKER_STOP_DEADLINE + 15)
        if worker.poll() is None:
            pytest.fail(f"the worker did not stop after SIGTERM with Kafka down (log {log})")
        assert worker.returncode == 1
        assert "worker did not stop within" in log.read_text()
        # Its relay process, waiting on Kafka too, goes once its last rounds had their seconds.
        assert relays
        for pid in relays:
            wait_for(lambda pid=pid: not _running(pid), 20, f"relay {pid} to exit (log {log})")

        # Nothing was lost or committed past what was applied: a worker on the broker back
        # applies what arrives next, and the first alerts stay stored once.
        kafka.start()
        worker = start()
        more = [alert(f"After{n}", at=t0 + timedelta(seconds=1, milliseconds=n)) for n in range(5)]
        asyncio.run(produce(kafka.bootstrap, topic, more))
        wait_for(
            lambda: stored_alerts(engine) == 25, 90, f"the alerts after the restart stored (log {log})"
        )
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        engine.dispose()
        kafka.stop()
