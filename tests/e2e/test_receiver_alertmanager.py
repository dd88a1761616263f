"""A real Alertmanager → receiver → Kafka: firing, resolved, grouped, truncated, and a broker outage.

These run ``sevflow receiver`` alone (no worker) and read the alerts topic directly, so what is
asserted is exactly what the receiver wrote: one record per alert and state, never a duplicate.
"""

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.alert import AlertRecord
from models.fingerprint import fingerprint
from testkit.harness import Alertmanager, PrivateKafka, Sevflow, read_topic, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def am_alert(labels: dict[str, str], *, ends: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} on {labels['instance']}"},
        "generatorURL": "http://prom.test/graph?g0.expr=up&g0.tab=1",
    }
    if ends is not None:
        alert["endsAt"] = ends.strftime("%Y-%m-%dT%H:%M:%SZ")
    return alert


def group(name: str, size: int) -> list[dict[str, str]]:
    return [{"alertname": name, "instance": f"host-{i}", "job": "node"} for i in range(size)]


def records_of(bootstrap: str, topic: str, expect: int, settle: float = 3.0) -> list[AlertRecord]:
    messages = read_topic(bootstrap, topic, expect=expect, settle=settle, timeout=90)
    records = [AlertRecord.from_bytes(m.value) for m in messages]
    assert all(m.key == r.fingerprint.encode() for m, r in zip(messages, records, strict=True))
    return records


@pytest.fixture
def receiver(tmp_path: Path, kafka_bootstrap: str) -> Iterator[tuple[Sevflow, Alertmanager]]:
    sevflow = Sevflow(
        tmp_path, kafka_bootstrap, f"sqlite:///{tmp_path / 'unused.db'}", command="receiver"
    )
    alertmanager = Alertmanager(
        tmp_path,
        f"{sevflow.url}/webhooks/alertmanager",
        token=sevflow.token,
        max_alerts=2,
    )
    try:
        sevflow.start()
        alertmanager.start()
        yield sevflow, alertmanager
    finally:
        alertmanager.stop()
        sevflow.stop()


def test_firing_grouped_truncated_then_resolved(receiver, kafka_bootstrap: str) -> None:  # type: ignore[no-untyped-def]
    sevflow, alertmanager = receiver
    pair, trio = group("PairDown", 2), group("TrioDown", 3)
    alertmanager.post_alerts([am_alert(labels) for labels in pair + trio])

    fired = records_of(kafka_bootstrap, sevflow.alerts_topic, expect=4)
    by_group = Counter(r.group_key for r in fired)
    assert by_group == {'{}:{alertname="PairDown"}': 2, '{}:{alertname="TrioDown"}': 2}, fired
    assert all(r.status == "firing" and r.ends_at is None for r in fired)
    assert {r.truncated_alerts for r in fired if "Trio" in r.group_key} == {1}
    assert {r.truncated_alerts for r in fired if "Pair" in r.group_key} == {0}
    assert {r.fingerprint for r in fired} >= {fingerprint(labels) for labels in pair}
    assert {r.receiver for r in fired} == {"sevflow"}
    assert all(
        r.external_url and r.generator_url == "http://prom.test/graph?g0.expr=up&g0.tab=1" for r in fired
    )

    ended = datetime.now(UTC) - timedelta(seconds=1)
    alertmanager.post_alerts([am_alert(labels, ends=ended) for labels in pair])
    everything = records_of(kafka_bootstrap, sevflow.alerts_topic, expect=6)
    resolved = [r for r in everything if r.status == "resolved"]
    assert sorted(r.fingerprint for r in resolved) == sorted(fingerprint(lb) for lb in pair)
    assert all(r.ends_at is not None for r in resolved)
    # Exactly once per alert and state: no notification was written twice.
    assert Counter((r.fingerprint, r.status) for r in everything).most_common(1)[0][1] == 1
    assert sevflow.metric("sevflow_alerts_produced_total") == 6


def test_broker_outage_503_then_retry_lands_each_alert_once(tmp_path: Path) -> None:
    kafka = PrivateKafka(tmp_path / "kafka-home").start()
    sevflow = Sevflow(
        tmp_path,
        kafka.bootstrap,
        f"sqlite:///{tmp_path / 'unused.db'}",
        command="receiver",
        extra_env={"SEVFLOW_KAFKA_TIMEOUT_SECONDS": "2", "SEVFLOW_TOPIC_PARTITIONS": "2"},
    )
    alertmanager = Alertmanager(
        tmp_path, f"{sevflow.url}/webhooks/alertmanager", token=sevflow.token, group_interval="2s"
    )
    try:
        sevflow.start()
        alertmanager.start()
        before = group("BeforeOutage", 2)
        alertmanager.post_alerts([am_alert(labels) for labels in before])
        assert len(records_of(kafka.bootstrap, sevflow.alerts_topic, expect=2, settle=1)) == 2

        kafka.stop()
        during = group("DuringOutageA", 3) + group("DuringOutageB", 1)
        alertmanager.post_alerts([am_alert(labels) for labels in during])
        wait_for(
            lambda: sevflow.metric("sevflow_alerts_refused_total") >= 4,
            60,
            f"Alertmanager's notifications refused with 503 (log: {sevflow.log_path})",
        )
        assert "status=503" in sevflow.log_path.read_text()

        kafka.start()
        wait_for(
            lambda: (
                sevflow.metric("sevflow_alerts_produced_total")
                + sevflow.metric("sevflow_alerts_deduplicated_total")
                >= 6
            ),
            90,
            f"Alertmanager's retries accepted (log: {sevflow.log_path})",
        )
        # Give late deliveries and any further retry time to show up as duplicates.
        records = records_of(kafka.bootstrap, sevflow.alerts_topic, expect=6, settle=6)
        counts = Counter(r.fingerprint for r in records)
        expected = {fingerprint(labels) for labels in before + during}
        produced = sevflow.metric("sevflow_alerts_produced_total")
        deduplicated = sevflow.metric("sevflow_alerts_deduplicated_total")
        assert set(counts) == expected
        # Exactly once, whichever way the outage played out: records queued during it and
        # delivered once the broker was back are not written again by Alertmanager's retry
        # (counted as deduplicated), and records that failed are written by the retry. Which of
        # the two happens depends on timing; tests/unit/test_receiver_ledger.py pins each down.
        assert set(counts.values()) == {1}, (counts, produced, deduplicated)
        assert produced + deduplicated >= len(expected)
    finally:
        alertmanager.stop()
        sevflow.stop()
        kafka.stop()


def test_basic_auth_from_alertmanager(tmp_path: Path, kafka_bootstrap: str) -> None:
    sevflow = Sevflow(
        tmp_path,
        kafka_bootstrap,
        f"sqlite:///{tmp_path / 'unused.db'}",
        command="receiver",
        extra_env={"SEVFLOW_WEBHOOK_BASIC_AUTH": "amuser:ampass-0ld,amuser:ampass-n3w"},
    )
    alertmanager = Alertmanager(
        tmp_path,
        f"{sevflow.url}/webhooks/alertmanager",
        token="unused",
        basic_auth=("amuser", "ampass-n3w"),
    )
    try:
        sevflow.start()
        alertmanager.start()
        labels = group("BasicAuth", 1)
        alertmanager.post_alerts([am_alert(labels[0])])
        (record,) = records_of(kafka_bootstrap, sevflow.alerts_topic, expect=1, settle=1)
        assert record.fingerprint == fingerprint(labels[0])
        assert "ampass" not in sevflow.log_path.read_text()
    finally:
        alertmanager.stop()
        sevflow.stop()
