"""The outbox relay's own process (streams/relay_process.py) on the real broker.

It publishes what the worker committed and reports the count back, gives its lease up when the
worker closes the pipe, never outlives a worker killed outright, and is started again when it
dies on its own.
"""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kafka_admin.topics import ensure_topic
from models.incident import LifecyclePolicy
from models.settings import Settings
from store.db import async_engine, sync_engine
from store.incidents import IncidentStore
from store.migrate import upgrade
from store.schema import incident_events
from streams.pipeline import Pipeline
from streams.relay import RelaySettings
from streams.relay_process import RelayProcess
from streams.rules import load_rules
from testkit.harness import relay_lease_holder, role_env, wait_for
from testkit.kafka_io import read_json_topic
from testkit.local import REPO
from tests.builders import alert
from tests.integration.test_worker_failures import produce

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_relay_process_publishes_reports_and_gives_the_lease_up(
    tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"relayproc-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'sevflow.db'}"
    for name in [k for k in os.environ if k.startswith("SEVFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in role_env(kafka_bootstrap, prefix, url, tmp_path).items():
        monkeypatch.setenv(name, value)
    settings = RelaySettings.of(Settings())
    for name in [k for k in os.environ if k.startswith("SEVFLOW_")]:
        monkeypatch.delenv(name)  # the relay is handed its settings: it reads no environment
    migrator = sync_engine(url)
    upgrade(migrator)
    migrator.dispose()
    await ensure_topic(kafka_bootstrap, f"{prefix}-events", 4)
    engine = async_engine(url)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    reported: list[int] = []
    all_reported = asyncio.Event()

    def count(published: int) -> None:
        reported.append(published)
        if sum(reported) >= 30:
            all_reported.set()

    relay = RelayProcess(settings, on_published=count)
    relay.start()
    try:
        events = await pipeline.process_alerts([alert(f"P{n}", instance=f"h{n}") for n in range(30)])
        assert len(events) == 30  # one incident opened by each alert
        relay.wake()
        async with asyncio.timeout(60):
            await all_reported.wait()
        await relay.stop(grace=10)
        assert relay.pid is None  # stopped and forgotten
        assert sum(reported) == len(events)
        async with engine.connect() as conn:
            unpublished = select(func.count()).where(incident_events.c.published_at.is_(None))
            assert (await conn.execute(unpublished)).scalar_one() == 0
    finally:
        await relay.stop(grace=10)
        await engine.dispose()
    assert relay_lease_holder(url) == ""  # given up on the way out
    published = await read_json_topic(kafka_bootstrap, f"{prefix}-events")
    assert sorted(e["event_id"] for e in published) == sorted(str(e.event_id) for e in events)


def _start_worker(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (tmp_path / "worker.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sevflow", "worker"], cwd=REPO, env=env, stdout=out, stderr=out
        )


def test_a_killed_workers_relay_process_exits_too(tmp_path: Path, kafka_bootstrap: str) -> None:
    url = f"sqlite:///{tmp_path / 'sevflow.db'}"
    worker = _start_worker(
        tmp_path, role_env(kafka_bootstrap, f"orphan-{uuid.uuid4().hex[:8]}", url, tmp_path)
    )
    try:
        wait_for(lambda: relay_lease_holder(url), 60, "the relay to take its lease")
        (relay_pid,) = wait_for(lambda: _children(worker.pid), 10, "the relay process")
        worker.kill()
        worker.wait()
        wait_for(lambda: not _running(relay_pid), 15, "the orphaned relay process to exit")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_relay_process_that_dies_is_started_again(tmp_path: Path, kafka_bootstrap: str) -> None:
    prefix = f"respawn-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'sevflow.db'}"
    env = role_env(kafka_bootstrap, prefix, url, tmp_path, topic_partitions="2")
    asyncio.run(ensure_topic(kafka_bootstrap, f"{prefix}-alerts", 2))
    worker = _start_worker(tmp_path, env)
    try:
        wait_for(lambda: relay_lease_holder(url), 60, "the relay to take its lease")
        (first,) = wait_for(lambda: _children(worker.pid), 10, "the relay process")
        os.kill(first, signal.SIGKILL)
        (second,) = wait_for(
            lambda: [p for p in _children(worker.pid) if p != first], 20, "a new relay process"
        )
        assert _running(second)
        now = datetime.now(UTC)
        records = [
            alert(f"R{n}", instance=f"h{n}", at=now + timedelta(milliseconds=n)) for n in range(10)
        ]
        asyncio.run(produce(kafka_bootstrap, f"{prefix}-alerts", records))

        def published() -> list[dict[str, object]] | None:
            events = asyncio.run(read_json_topic(kafka_bootstrap, f"{prefix}-events", idle_polls=2))
            return events if len(events) >= 10 else None

        events = wait_for(published, 60, "the new relay to publish the alerts' events")
        assert len({e["event_id"] for e in events}) == len(events)  # none twice
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert not _running(second)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert (
        "outbox relay process exited with status -9; starting it again"
        in (tmp_path / "worker.log").read_text()
    )
