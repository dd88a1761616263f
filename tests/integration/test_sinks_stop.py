"""The sinks process asked to stop (SIGTERM) while a vendor call is in flight finishes it first.

PagerDuty takes the trigger and is slow to answer; SIGTERM arrives meanwhile. The sinks finish the
batch in hand (the answer recorded in the delivery log, the offset committed) before exiting, so
the next process does not trigger again. Cancelled at once, they left the call unrecorded and the
next process paged a second time (same dedup_key).
"""

import asyncio
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from testkit.fakes import fixtures
from testkit.fakes.events import IncidentStory
from testkit.fakes.pagerduty import FakePagerDuty
from tests.integration.test_sink_kafka import _sinks_process, eventually, kafka_settings, produce

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


async def test_sigterm_during_a_page_finishes_it_and_pages_once(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    settings = kafka_settings(
        kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert,
        sinks_request_timeout_seconds=60.0,
    )  # fmt: skip
    log = tmp_path / "sinks.log"
    story = IncidentStory()
    fake_pagerduty.faults.hold = threading.Event()
    await produce(settings, story.fire())
    first = _sinks_process(settings, log)
    try:
        await eventually(lambda: _listening(settings.status_page_port), f"the sinks up (log {log})")
        held = await asyncio.to_thread(fake_pagerduty.faults.held.wait, 60)
        assert held, f"the page never arrived:\n{log.read_text()[-3000:]}"
        first.send_signal(signal.SIGTERM)
        # The signal is handled once the built-in status page stops listening (it closes first).
        await eventually(
            lambda: not _listening(settings.status_page_port), f"SIGTERM handled (log {log})"
        )
        fake_pagerduty.faults.hold.set()
        fake_pagerduty.faults.hold = None
        assert await asyncio.to_thread(first.wait, 30) == 0, log.read_text()[-3000:]
    finally:
        _stop(first)
    assert fake_pagerduty.actions() == ["trigger"]

    paged = fake_pagerduty.events[0]["dedup_key"]

    # The next process starts after the committed page: it pages the next incident only.
    second = _sinks_process(settings, log)
    try:
        await produce(settings, IncidentStory(name="Next", group="next").fire())
        await eventually(
            lambda: len(fake_pagerduty.actions()) >= 2, f"the next incident paged (log {log})", 60
        )
    finally:
        assert _stop(second) == 0, log.read_text()[-3000:]
    assert fake_pagerduty.actions(paged) == ["trigger"]
    assert len(fake_pagerduty.alerts) == 2
