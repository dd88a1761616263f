"""``sevflow run`` (receiver, worker, sinks) gets SIGTERM in the middle of a stream of notifications,
and starts again on the same topics, consumer groups and database.

Each role hands its work back cleanly: the receiver answers what it has started (then refuses new
connections, which Alertmanager retries), the worker commits only applied offsets, the sinks only
delivered ones. Expected after the restart: every notification answered 200 is stored, each
incident event is on the topic once, and each incident is paged once.
"""

from pathlib import Path
from typing import Any

import pytest

from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import wait_for
from testkit.store_backends import fresh_database
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


def test_sigterm_mid_stream_then_restart_loses_and_doubles_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: Any,
) -> None:
    fresh_database(postgres_url, create=False)
    run = PagedRun(tmp_path, kafka_bootstrap, postgres_url, fake_pagerduty, tls_cert)
    sevflow = run.sevflow
    sender = run.sender(interval=0.05)
    try:
        sevflow.start()
        sender.start()
        wait_for(lambda: len(run.triggered()) >= 10, 60, f"the first pages (log {sevflow.log_path})")
        assert sevflow.process is not None
        sevflow.stop()  # SIGTERM to sevflow run, which passes it to every role
        assert sevflow.process.returncode == 0, sevflow.log_path.read_text()[-3000:]
        accepted_before = len(sender.accepted)
        sevflow.start()
        wait_for(
            lambda: len(sender.accepted) >= accepted_before + 20, 60, "notifications accepted again"
        )
        accepted = run.accepted_by(sender)
        run.wait_until_settled(accepted)
        print(f"sent {len(accepted)} ({accepted_before} before the stop), answers {sender.statuses}")
        run.check_once(accepted)
    finally:
        sender.stopping.set()
        run.close()
