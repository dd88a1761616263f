"""The receiver's HTTP contract: status codes are Alertmanager's retry policy.

Kafka is replaced at its boundary by a recording publisher (the AlertPublisher protocol); the real
producer is exercised in tests/integration and tests/e2e.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from models.alert import AlertRecord
from receiver.app import create_app
from receiver.auth import BearerAuth
from receiver.kafka import PublishError
from tests.conftest import AM_FIXTURES, load_fixture

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKEN = "t0ken-with-enough-entropy"


class RecordingPublisher:
    """Stands in for Kafka: keeps what was published, or fails like a down broker."""

    def __init__(self) -> None:
        self.records: list[AlertRecord] = []
        self.down = False

    async def publish(self, records: Sequence[AlertRecord]) -> None:
        if self.down:
            raise PublishError("Kafka unreachable: KafkaConnectionError")
        self.records.extend(records)

    async def ready(self) -> bool:
        return not self.down


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def client(publisher: RecordingPublisher) -> TestClient:
    app = create_app(
        publisher=publisher,
        auth=BearerAuth([SecretStr("old-token"), SecretStr(TOKEN)]),
        now=lambda: NOW,
        max_body_bytes=64 * 1024,
    )
    return TestClient(app)


def post(client: TestClient, body: bytes | str, **headers: str):  # type: ignore[no-untyped-def]
    base = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    base.update(headers)
    return client.post("/webhooks/alertmanager", content=body, headers=base)


def fixture_body(name: str) -> str:
    return (AM_FIXTURES / name).read_text()


def test_accepts_real_payload_one_record_per_alert(client, publisher) -> None:  # type: ignore[no-untyped-def]
    response = post(client, fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json"))
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "alerts": 3}
    assert [r.fingerprint for r in publisher.records] == [
        "c66e8c4648513850",
        "505d30e8250212ef",
        "1e34ebdf1d041202",
    ]
    assert all(r.received_at == NOW for r in publisher.records)


def test_every_token_of_a_rotation_is_valid(client, publisher) -> None:  # type: ignore[no-untyped-def]
    body = fixture_body("zulip__resolved_single_alert.json")
    assert post(client, body, authorization="Bearer old-token").status_code == 200
    assert post(client, body, authorization=f"bearer {TOKEN}").status_code == 200
    assert len(publisher.records) == 2


@pytest.mark.parametrize(
    "authorization", ["", "Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"]
)
def test_bad_credentials_401_without_hint(client, publisher, authorization: str) -> None:  # type: ignore[no-untyped-def]
    response = post(
        client, fixture_body("zulip__resolved_single_alert.json"), authorization=authorization
    )
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": "missing or invalid credentials"}
    assert TOKEN not in response.text
    assert publisher.records == []


def test_legacy_payload_422_names_version(client, publisher) -> None:  # type: ignore[no-untyped-def]
    response = post(client, fixture_body("inCaller-prometheus_bot__legacy_v3_numeric_groupkey.json"))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_payload"
    assert "version" in {d["field"] for d in body["details"]}
    assert publisher.records == []


def test_malformed_json_400(client, publisher) -> None:  # type: ignore[no-untyped-def]
    response = post(client, '{"version": "4", "alerts": [')
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert publisher.records == []


def test_wrong_content_type_415(client, publisher) -> None:  # type: ignore[no-untyped-def]
    response = post(client, "version=4", **{"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert publisher.records == []


def test_body_over_cap_413(client, publisher) -> None:  # type: ignore[no-untyped-def]
    document = load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    document["commonAnnotations"]["padding"] = "x" * (65 * 1024)
    response = post(client, json.dumps(document))
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert publisher.records == []


def test_kafka_down_503_with_retry_after_and_nothing_accepted(client, publisher) -> None:  # type: ignore[no-untyped-def]
    publisher.down = True
    response = post(client, fixture_body("alertmanager-v0.25.0-captured__resolved_all.json"))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["error"] == "kafka_unavailable"
    assert client.get("/ready").status_code == 503
    publisher.down = False
    assert client.get("/ready").status_code == 200


def test_health_answers(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
