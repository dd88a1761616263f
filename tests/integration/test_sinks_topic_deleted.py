"""The events topic deleted under running sinks: they stop with a clear error, and SIGTERM works.

aiokafka treats a topic that vanished (UnknownTopicOrPartition) as retriable: an offset commit
for it is retried without end, and the sinks, waiting in that commit, never looked at their stop
event again. SIGTERM was ignored, and aiokafka logged thousands of lines a second.
"""

import asyncio
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from models.settings import Settings
from testkit.fakes import fixtures
from testkit.fakes.events import IncidentStory
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.kafka_io import delete_topics
from tests.integration.test_sink_kafka import _sinks_process, eventually, kafka_settings, produce

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
