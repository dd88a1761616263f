"""An alert as large as the receiver takes (about a megabyte of labels and annotations) opens its
incident, and its event reaches incident-events within a Kafka record; the events behind it
flow too. Its ``opened`` event carried the whole alert and was larger than Kafka's record limit:
the outbox relay's publish failed at every round, and no event of any incident was published
again. Real receiver, worker, relay and broker; SQLite and PostgreSQL.
"""

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest

from models.event_size import EVENT_MAX_BYTES
from models.events import EventType, IncidentEvent
from models.fitting import TRUNCATED
from receiver.kafka import MAX_RECORD_BYTES
from testkit.harness import Sevflow, wait_for
from testkit.kafka_io import read_json_topic

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _size(value: object) -> int:
    """The record's size: the relay publishes the stored document, compact JSON in UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _payload(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, object]:
    starts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    alert = {
        "status": "firing",
        "labels": {"alertname": name, "service": "checkout", "severity": "critical", **labels},
        "annotations": {"summary": f"{name} fired", **annotations},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{abs(hash(name)):016x}"[:16],
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "sevflow",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }


def test_an_alert_of_a_megabyte_pages_and_the_events_behind_it_flow(
    fresh_sevflow: Sevflow, kafka_bootstrap: str
) -> None:
    huge = _payload(
        "HugeAlert",
        {f"label_{n:03d}": "v" * 1_500 for n in range(300)},
        {"description": "d" * 300_000, "impact": "i" * 120_000},
    )
    small = _payload("SmallAlert", {}, {})
    headers = {"authorization": f"Bearer {fresh_sevflow.token}"}
    with httpx.Client(base_url=fresh_sevflow.url, timeout=30) as http:
        answered = http.post("/webhooks/alertmanager", json=huge, headers=headers)
        assert answered.status_code == 200, answered.text
        assert http.post("/webhooks/alertmanager", json=small, headers=headers).status_code == 200
    assert len(str(huge)) > 0.8 * MAX_RECORD_BYTES

    topic = f"e2e-events-{fresh_sevflow.suffix}"

    def opened() -> dict[str, tuple[int, IncidentEvent]] | None:
        values = asyncio.run(read_json_topic(kafka_bootstrap, topic, idle_polls=2))
        events = [(_size(v), IncidentEvent.model_validate(v)) for v in values]
        found = {e.incident.title: (n, e) for n, e in events if e.type is EventType.OPENED}
        return found if len(found) == 2 else None

    events = wait_for(opened, 90, f"both incidents' opened events on {topic}")
    size, event = events["HugeAlert fired"]
    assert size <= EVENT_MAX_BYTES
    assert event.alert is not None
    assert event.alert.annotations["description"].endswith(TRUNCATED)
    assert event.alert.labels["alertname"] == "HugeAlert"
    assert events["SmallAlert fired"][1].alert is not None
