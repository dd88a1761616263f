"""A notification whose groupKey is longer than PostgreSQL's index takes opens its incident, and
the alerts behind it flow. On PostgreSQL the group's row was refused (``ProgramLimitExceeded``),
which the worker took for a passing fault: it retried the batch for ever and no alert behind it
was stored again. Real receiver, worker, relay and broker; SQLite and PostgreSQL."""

import asyncio
import secrets
from datetime import UTC, datetime

import httpx
import pytest

from models.events import EventType, IncidentEvent
from models.group_keys import GROUP_KEY_MAX_BYTES, stored_group_key
from testkit.harness import Sevflow, wait_for
from testkit.kafka_io import read_json_topic

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _payload(name: str, group_key: str) -> dict[str, object]:
    starts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "4",
        "groupKey": group_key,
        "status": "firing",
        "receiver": "sevflow",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "service": "checkout", "severity": "critical"},
                "annotations": {"summary": f"{name} fired"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
            }
        ],
    }


def test_a_group_key_longer_than_the_index_takes_opens_its_incident_and_the_alerts_behind_it_flow(
    fresh_sevflow: Sevflow, kafka_bootstrap: str
) -> None:
    # Random hex: PostgreSQL compresses a long index entry, and a key of one repeated
    # character would fit compressed.
    long_key = '{}/{team="' + secrets.token_hex(5_000) + '"}:{alertname="LongGroup"}'
    headers = {"authorization": f"Bearer {fresh_sevflow.token}"}
    with httpx.Client(base_url=fresh_sevflow.url, timeout=30) as http:
        for payload in (
            _payload("LongGroup", long_key),
            _payload("BehindIt", '{}:{alertname="BehindIt"}'),
        ):
            answered = http.post("/webhooks/alertmanager", json=payload, headers=headers)
            assert answered.status_code == 200, answered.text

    topic = f"e2e-events-{fresh_sevflow.suffix}"

    def opened() -> dict[str, IncidentEvent] | None:
        values = asyncio.run(read_json_topic(kafka_bootstrap, topic, idle_polls=2))
        events = [IncidentEvent.model_validate(v) for v in values]
        found = {e.incident.title: e for e in events if e.type is EventType.OPENED}
        return found if len(found) == 2 else None

    events = wait_for(opened, 90, f"both incidents' opened events on {topic}")
    long_incident = events["LongGroup fired"].incident
    assert long_incident.group_key == stored_group_key(long_key)
    assert len(long_incident.group_key.encode()) <= GROUP_KEY_MAX_BYTES
    assert events["BehindIt fired"].incident.group_key == '{}:{alertname="BehindIt"}'
