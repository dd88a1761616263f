"""The events topic deleted under running sinks: they stop with a clear error, and SIGTERM works.

aiokafka treats a topic that vanished (UnknownTopicOrPartition) as retriable: an offset commit
for it is retried without end, and the sinks, waiting in that commit, never looked at their stop
event again. SIGTERM was ignored, and aiokafka logged thousands of lines a second.
"""

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from models.settings import Settings
from models.supervision import RoleStatus, loads
from sevflow.supervise import STATUS_FILE
from testkit.fakes import fixtures
from testkit.fakes.events import IncidentStory
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import wait_for
from testkit.kafka_io import delete_topics
from tests.integration.test_sink_kafka import _sinks_process, eventually, kafka_settings, produce
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


def _ended(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


async def _paged_then_deleted(
    settings: Settings, log: Path, fake_pagerduty: FakePagerDuty, command: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """The sinks started on an incident's opening; its events topic deleted once it paged."""
    await produce(settings, IncidentStory().fire())
    process = _sinks_process(settings, log, command)
    try:
        await eventually(lambda: fake_pagerduty.actions() == ["trigger"], f"the page (log {log})", 60)
        await delete_topics(settings.kafka_bootstrap, {settings.events_topic})
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


async def test_events_topic_deleted_ends_the_sinks_with_a_clear_error(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    settings = kafka_settings(kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert)
    log = tmp_path / "sinks.log"
    process = await _paged_then_deleted(settings, log, fake_pagerduty, ["-m", "sevflow", "sinks"])
    try:
        await eventually(lambda: _ended(process), f"the sinks to stop (log {log})", 60)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"the sinks ignored SIGTERM:\n{log.read_text()[-3000:]}")
    text = log.read_text()
    assert process.returncode == 1, text[-3000:]
    assert f"topic {settings.events_topic} no longer exists" in text, text[-3000:]
    # aiokafka's own complaint, once per metadata refresh, not thousands of lines.
    assert len(text.splitlines()) < 200, f"{len(text.splitlines())} lines:\n{text[-3000:]}"


async def test_sigterm_with_the_events_topic_deleted_stops_the_sinks(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    settings = kafka_settings(kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert)
    log = tmp_path / "sinks.log"
    process = await _paged_then_deleted(settings, log, fake_pagerduty)
    try:
        await asyncio.sleep(2)  # (within the 5 s a commit is given: the loop waits in it)
        process.send_signal(signal.SIGTERM)
        await eventually(lambda: _ended(process), f"SIGTERM handled (log {log})", 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sevflow_run_pages_again_once_the_deleted_events_topic_is_back(
    tmp_path: Path, kafka_bootstrap: str, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    """Under ``sevflow run`` the sinks that stopped are started again; they create the topic anew,
    the relay publishes the next incidents' events into it, and each is paged once."""
    run = PagedRun(
        tmp_path, kafka_bootstrap, f"sqlite:///{tmp_path / 'store.db'}", fake_pagerduty, tls_cert
    )
    sevflow = run.sevflow
    status_file = tmp_path / "data" / STATUS_FILE

    def sinks() -> RoleStatus:
        return next(r for r in loads(status_file.read_text())[1] if r.role == "sinks")

    try:
        sevflow.start()
        before = run.sender(interval=0.05, limit=10)
        before.start()
        wait_for(lambda: len(before.accepted) == 10, 60, "the first groups accepted")
        first = run.accepted_by(before)
        run.wait_until_settled(first)

        asyncio.run(delete_topics(kafka_bootstrap, {f"e2e-events-{sevflow.suffix}"}))
        wait_for(
            lambda: (r := sinks()).restarts == 1 and r.state == "up",
            60,
            f"the sinks started again (log {sevflow.log_path})",
        )
        after = run.sender(interval=0.05, limit=10, first=10)
        after.start()
        wait_for(lambda: len(after.accepted) == 10, 60, "the next groups accepted")
        second = run.accepted_by(after)
        run.wait_until_settled(first | second)
        assert sevflow.process is not None
        assert sevflow.process.poll() is None
        assert sinks().last_exit == "status 1"
        text = sevflow.log_path.read_text()
        assert f"topic e2e-events-{sevflow.suffix} no longer exists" in text
    finally:
        run.close()
    pages = Counter(e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger")
    assert [key for key, n in pages.items() if n > 1] == []
    assert len(pages) == 20
