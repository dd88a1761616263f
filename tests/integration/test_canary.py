"""The end-to-end canary through the real path: ``sevflow run`` (receiver, worker, sinks) on real
Kafka, its own canary sent by the receiver to its own webhook, PagerDuty faked.

Expected: the fake PagerDuty gets a canary round's trigger, at severity info, on the canary's
routing key, then its resolve with the same dedup_key; nothing reaches the normal routing key; the
sinks' /metrics exports when PagerDuty last accepted a canary. tests/unit/test_canary.py covers the
pieces (the sender's rounds, the rules, the PagerDuty routing) without Kafka.
"""

import time
from pathlib import Path
from typing import Any

import pytest

from testkit.fakes import fixtures
from testkit.fakes.fixtures import ROUTING_KEY
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import metric_sum, wait_for
from testkit.local_http import local_get
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert

CANARY_KEY = "CANARYKEY0123456789abcdefABCDEF0"  # 32 characters, like a real integration key


def test_a_canary_round_reaches_pagerduty_on_its_own_key_and_resolves(
    tmp_path: Path, kafka_bootstrap: str, fake_pagerduty: FakePagerDuty, tls_cert: Any
) -> None:
    started = time.time()
    run = PagedRun(
        tmp_path,
        kafka_bootstrap,
        f"sqlite:///{tmp_path / 'sevflow.db'}",
        fake_pagerduty,
        tls_cert,
        canary_pagerduty_routing_key=CANARY_KEY,
        canary_interval_seconds="2",
        canary_resolve_after_seconds="0.5",
        # SEV4 (the canary's) pages the normal key too: only the canary flag keeps it off.
        pagerduty_severities="SEV1-SEV4",
    )
    sevflow = run.sevflow

    def resolved_round() -> str | None:
        """The dedup_key of a canary round triggered, then resolved, on the canary's key."""
        triggered = {
            e["dedup_key"]
            for e in fake_pagerduty.events
            if e["routing_key"] == CANARY_KEY and e["event_action"] == "trigger"
        }
        return next(
            (
                e["dedup_key"]
                for e in fake_pagerduty.events
                if e["routing_key"] == CANARY_KEY
                and e["event_action"] == "resolve"
                and e["dedup_key"] in triggered
            ),
            None,
        )

    try:
        sevflow.start()
        key = wait_for(
            resolved_round, 90, f"a canary round triggered and resolved (log {sevflow.log_path})"
        )
        metrics = wait_for(
            lambda: (
                (text := local_get(f"http://127.0.0.1:{sevflow.sinks_metrics_port}/metrics").text)
                and "sevflow_canary_last_delivered_timestamp_seconds" in text
                and text
            ),
            30,
            "the sinks' canary metric",
        )
    finally:
        run.close()

    round_events = [e for e in fake_pagerduty.events if e["dedup_key"] == key]
    assert [e["event_action"] for e in round_events][:1] == ["trigger"]
    assert round_events[-1]["event_action"] == "resolve"
    trigger = round_events[0]
    assert trigger["payload"]["severity"] == "info"
    assert "sevflow canary" in trigger["payload"]["summary"]
    # Nothing of the canary (nor anything else) reached the normal routing key.
    assert [e for e in fake_pagerduty.events if e["routing_key"] == ROUTING_KEY] == []
    assert {e["routing_key"] for e in fake_pagerduty.events} == {CANARY_KEY}
    delivered = metric_sum(metrics, "sevflow_canary_last_delivered_timestamp_seconds")
    assert delivered >= started
    assert metric_sum(metrics, "sevflow_canary_interval_seconds") == 2
