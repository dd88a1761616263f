"""The broker stops while every role runs, and comes back with the same storage.

``sevflow run`` (receiver, worker, sinks) on a broker of the test's own (testkit/harness.py
``PrivateKafka``), PostgreSQL as the store, PagerDuty faked. A sender that behaves like
Alertmanager (tests/paged_run.py: a new alert group every 0.1 s, each notification retried after
``Retry-After`` until it is answered 2xx) keeps posting while the broker is stopped for several
seconds and started again. Expected: the receiver answers 503 with Retry-After while Kafka is
down; once it is back every group answered 200 is stored, its incident is published once on the
incident-events topic (event ids unique) and paged once, without restarting sevflow (a worker
whose faust consumer stalled would stop itself and ``sevflow run`` start it again).
"""

import time
from pathlib import Path
from typing import Any

import pytest

from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import PrivateKafka, wait_for
from testkit.store_backends import fresh_database
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path,
    private_kafka: PrivateKafka,
    postgres_url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: Any,
) -> None:
    kafka = private_kafka
    fresh_database(postgres_url, create=False)
    run = PagedRun(
        tmp_path,
        kafka.bootstrap,
        postgres_url,
        fake_pagerduty,
        tls_cert,
        kafka_timeout_seconds="3",
        log_level="INFO",
        # Should faust's consumer never fetch again after the outage (faust-streaming #175), the
        # worker exits and sevflow run starts it again within the test's 60 s waits.
        worker_stall_seconds="20",
    )
    sevflow = run.sevflow
    sender = run.sender()
    try:
        sevflow.start()
        sender.start()
        wait_for(lambda: len(run.triggered()) >= 5, 60, f"the first pages (log {sevflow.log_path})")

        kafka.stop()
        down_at = time.monotonic()
        refused_before = sender.refused()
        wait_for(
            lambda: sender.refused() >= refused_before + 5 and time.monotonic() - down_at >= 8,
            60,
            "notifications refused with 503 while the broker is down",
        )
        kafka.start()
        up_at = time.monotonic()
        at_restart = len(sender.accepted)
        wait_for(
            lambda: len(sender.accepted) >= at_restart + 20,
            60,
            f"notifications accepted again once the broker is back (log {sevflow.log_path})",
        )
        accepted = run.accepted_by(sender)
        run.wait_until_settled(accepted)
        assert sevflow.process is not None
        assert sevflow.process.poll() is None, "a role exited (sevflow run stops with it)"
        print(
            f"sent {len(accepted)} groups, {sender.statuses} answers, "
            f"down {up_at - down_at:.1f}s, stored {run.stored()}"
        )
        assert sender.refused() > refused_before
        assert sender.retry_after_missing == 0
        assert set(sender.statuses) <= {200, 503}, sender.statuses
        run.check_once(accepted)
    finally:
        sender.stopping.set()
        run.close()
