"""The receiver's HTTP contract: status codes are Alertmanager's retry policy.

Kafka is replaced at its boundary by a recording publisher (the AlertPublisher protocol); the real
producer is exercised in tests/integration and tests/e2e.
"""

import asyncio
import gzip
import json
from collections.abc import MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from models.access import ApiToken, Scope
from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from receiver.app import RECORDS_FIT_BODY_BYTES, create_app
from receiver.auth import WebhookAuth
from receiver.body import BodyTooLarge, hung_up, read_capped
from receiver.kafka import MAX_RECORD_BYTES, PublishError, RecordTooLarge, record_bytes
from receiver.ratelimit import RateLimiter
from tests.conftest import AM_FIXTURES, load_fixture

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKEN = "t0ken-with-enough-entropy"
BASIC = "amuser:ampass"


class RecordingPublisher:
    """Stands in for Kafka: keeps what was published, or fails like a down broker."""

    def __init__(self) -> None:
        self.records: list[AlertRecord] = []
        self.unanswered: list[AlertRecord] = []
        self.down = False

    async def publish(self, records: Sequence[AlertRecord]) -> None:
        if self.down:
            raise PublishError("Kafka unreachable: KafkaConnectionError")
        self.records.extend(records)

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        self.unanswered.extend(records)

    async def ready(self) -> bool:
        return not self.down


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def client(publisher: RecordingPublisher) -> TestClient:
    app = create_app(
        publisher=publisher,
        auth=WebhookAuth([SecretStr("old-token"), SecretStr(TOKEN)], [SecretStr(BASIC)]),
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


async def test_a_non_ascii_token_sent_as_utf8_is_accepted(publisher) -> None:  # type: ignore[no-untyped-def]
    token = "s3cr3t-p\u00e4ss"
    app = create_app(publisher=publisher, auth=WebhookAuth([SecretStr(token)]), now=lambda: NOW)
    body = fixture_body("zulip__resolved_single_alert.json")
    headers = [
        (b"authorization", b"Bearer " + token.encode("utf-8")),
        (b"content-type", b"application/json"),
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.post("/webhooks/alertmanager", content=body, headers=headers)
    assert response.status_code == 200
    assert len(publisher.records) == 1


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


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip", "x-whatever"])
def test_compressed_body_is_415_naming_the_encoding(client, publisher, encoding: str) -> None:  # type: ignore[no-untyped-def]
    body = gzip.compress(fixture_body("zulip__resolved_single_alert.json").encode())
    response = post(client, body, **{"content-encoding": encoding})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_content_encoding"
    assert encoding in response.json()["message"]
    assert publisher.records == []


def test_identity_encoding_is_accepted(client, publisher) -> None:  # type: ignore[no-untyped-def]
    body = fixture_body("zulip__resolved_single_alert.json")
    assert post(client, body, **{"content-encoding": "Identity"}).status_code == 200


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


def test_basic_auth_as_alertmanager_sends_it(client, publisher) -> None:  # type: ignore[no-untyped-def]
    body = fixture_body("alertmanager-v0.25.0-captured__firing_basic_auth_route.json")
    # Observed from Alertmanager 0.25 for basic_auth {username: amuser, password: ampass}.
    assert post(client, body, authorization="Basic YW11c2VyOmFtcGFzcw==").status_code == 200
    wrong = post(client, body, authorization="Basic YW11c2VyOndyb25n")  # amuser:wrong
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "unauthorized", "message": "missing or invalid credentials"}
    assert len(publisher.records) == len(
        load_fixture("alertmanager-v0.25.0-captured__firing_basic_auth_route.json")["alerts"]
    )


def test_empty_alert_list_422_names_alerts(client, publisher) -> None:  # type: ignore[no-untyped-def]
    document = load_fixture("zulip__resolved_single_alert.json")
    document["alerts"] = []
    response = post(client, json.dumps(document))
    assert response.status_code == 422
    assert "alerts" in {d["field"] for d in response.json()["details"]}
    assert publisher.records == []


def test_body_over_cap_413_when_streamed_without_length(client, publisher) -> None:  # type: ignore[no-untyped-def]
    chunks = (b"x" * 8192 for _ in range(20))  # chunked: no Content-Length to trust
    response = client.post(
        "/webhooks/alertmanager",
        content=chunks,
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert publisher.records == []


@pytest.mark.parametrize(
    "body",
    [
        '{"version": "4", "alerts": [}',
        "[" * 20_000 + "]" * 20_000,
        b'{"version": "4"\xff}',
    ],
)
def test_hostile_json_400_not_500(client, publisher, body) -> None:  # type: ignore[no-untyped-def]
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert publisher.records == []


def test_nan_where_a_list_belongs_is_422(client, publisher) -> None:  # type: ignore[no-untyped-def]
    response = post(client, '{"version": "4", "status": "firing", "receiver": "r", "alerts": NaN}')
    assert response.status_code == 422
    assert "alerts" in {d["field"] for d in response.json()["details"]}
    assert publisher.records == []


def test_lone_surrogate_in_label_is_refused_not_crashing(client, publisher) -> None:  # type: ignore[no-untyped-def]
    text = fixture_body("zulip__resolved_single_alert.json").replace(
        '"alertname": "', '"alertname": "\\ud800', 1
    )
    response = post(client, text)
    assert 400 <= response.status_code < 500
    assert publisher.records == []


def test_request_id_honoured_or_generated(client) -> None:  # type: ignore[no-untyped-def]
    body = fixture_body("zulip__resolved_single_alert.json")
    assert post(client, body, **{"x-request-id": "am-42"}).headers["x-request-id"] == "am-42"
    generated = post(client, body, **{"x-request-id": "bad id\twith spaces"}).headers["x-request-id"]
    assert generated != "bad id\twith spaces"
    assert len(generated) == 32
    assert client.get("/health").headers["x-request-id"]


def test_metrics_count_requests_alerts_and_latency(client, publisher) -> None:  # type: ignore[no-untyped-def]
    post(client, fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json"))
    post(client, "{", authorization="Bearer nope")
    publisher.down = True
    post(client, fixture_body("zulip__resolved_single_alert.json"))
    text = client.get("/metrics").text
    path = 'path="/webhooks/alertmanager"'
    assert f'http_requests_total{{method="POST",{path},status="200"}} 1.0' in text
    assert f'http_requests_total{{method="POST",{path},status="401"}} 1.0' in text
    assert f'http_requests_total{{method="POST",{path},status="503"}} 1.0' in text
    assert f'http_request_duration_seconds_bucket{{le="+Inf",method="POST",{path}}} 3.0' in text
    assert "sevflow_alerts_received_total 4.0" in text
    assert "sevflow_alerts_produced_total 3.0" in text
    assert "sevflow_alerts_refused_total 1.0" in text
    assert "sevflow_kafka_produce_duration_seconds_count 2.0" in text
    assert TOKEN not in text


def test_rate_limit_429_with_retry_after_then_recovers(publisher) -> None:  # type: ignore[no-untyped-def]
    clock = [100.0]
    app = create_app(
        publisher=publisher,
        auth=WebhookAuth([SecretStr(TOKEN)]),
        now=lambda: NOW,
        rate_limiter=RateLimiter(rate=1, burst=2),
        monotonic=lambda: clock[0],
    )
    client = TestClient(app)
    body = fixture_body("zulip__resolved_single_alert.json")
    assert [post(client, body).status_code for _ in range(2)] == [200, 200]
    limited = post(client, body)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert len(publisher.records) == 2
    clock[0] += 1.0
    assert post(client, body).status_code == 200


def big_body_app(publisher):  # type: ignore[no-untyped-def]
    """The app with room for a body larger than a Kafka record may be (4 MiB)."""
    return create_app(
        publisher=publisher,
        auth=WebhookAuth([SecretStr(TOKEN)]),
        now=lambda: NOW,
        max_body_bytes=4 * 1024 * 1024,
    )


def test_oversized_record_is_413_not_503(publisher) -> None:  # type: ignore[no-untyped-def]
    app = big_body_app(publisher)
    document = load_fixture("zulip__resolved_single_alert.json")
    document["alerts"][0]["annotations"]["description"] = "x" * 1_100_000
    response = post(TestClient(app), json.dumps(document))
    assert response.status_code == 413
    assert response.json()["details"] == [{"field": "alerts.0", "reason": "record too large"}]
    assert publisher.records == []


def test_record_three_times_its_body_is_413_not_accepted(publisher) -> None:  # type: ignore[no-untyped-def]
    # No groupKey: the record's group key is built from the labels, escaping each quote again, so
    # a record is about 3 x a body well under MAX_RECORD_BYTES; Kafka would refuse it for ever.
    app = big_body_app(publisher)
    document = load_fixture("zulip__resolved_single_alert.json")
    document.pop("groupKey", None)
    document["groupLabels"] = {}
    document["alerts"][0]["labels"] = {"alertname": "X", "expr": '"' * 240_000}
    body = json.dumps(document)
    assert len(body) < MAX_RECORD_BYTES // 2
    response = post(TestClient(app), body)
    assert response.status_code == 413
    assert response.json()["error"] == "record_too_large"
    assert response.json()["details"] == [{"field": "alerts.0", "reason": "record too large"}]
    assert publisher.records == []


class TooLargeForBrokerPublisher(RecordingPublisher):
    async def publish(self, records: Sequence[AlertRecord]) -> None:
        raise RecordTooLarge(2)


def test_record_the_broker_refuses_as_too_large_is_413_not_503() -> None:
    app = create_app(
        publisher=TooLargeForBrokerPublisher(), auth=WebhookAuth([SecretStr(TOKEN)]), now=lambda: NOW
    )
    body = fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    response = post(TestClient(app), body)
    assert response.status_code == 413
    assert "retry-after" not in response.headers
    assert response.json()["details"] == [{"field": "alerts.2", "reason": "record too large"}]


_hostile = st.text(alphabet='"\\\n\tx\u00e9\u2028', max_size=40)


@settings(max_examples=300)
@given(
    labels=st.dictionaries(_hostile.filter(bool), _hostile, min_size=1, max_size=5),
    group_labels=st.dictionaries(_hostile.filter(bool), _hostile, max_size=3),
    group_key=st.none() | _hostile,
    starts_at=st.sampled_from(
        ["1970-01-01T00:00:00Z", "2026-11-27T12:00:00Z", "2026-11-27T12:00:00.123456789-23:59"]
    ),
)
def test_a_record_is_at_most_three_times_its_body_plus_1k(
    labels: dict[str, str],
    group_labels: dict[str, str],
    group_key: str | None,
    starts_at: object,
) -> None:
    """The bound below which the webhook skips measuring records (RECORDS_FIT_BODY_BYTES)."""
    document: dict[str, object] = {
        "version": "4",
        "status": "firing",
        "receiver": "r",
        "groupLabels": group_labels,
        "alerts": [{"labels": labels, "startsAt": starts_at, "endsAt": starts_at}],
    }
    if group_key is not None:
        document["groupKey"] = group_key
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    (record,) = to_records(WebhookPayload.model_validate_json(body), NOW)
    assert len(record_bytes(record)) <= 3 * len(body) + 1024
    assert RECORDS_FIT_BODY_BYTES * 3 + 1024 <= MAX_RECORD_BYTES


class BrokenPublisher(RecordingPublisher):
    """A bug behind the webhook: an exception nobody expected, quoting a credential."""

    async def publish(self, records: Sequence[AlertRecord]) -> None:
        raise RuntimeError(f"boom near Bearer {TOKEN}")


def test_an_unexpected_error_is_a_json_500_with_the_request_id_and_no_secret(caplog) -> None:  # type: ignore[no-untyped-def]
    async def broken_route(request: Request) -> Response:
        raise OverflowError(f"from {request.headers['authorization']}")

    app = create_app(
        publisher=BrokenPublisher(),
        auth=WebhookAuth(
            [SecretStr(TOKEN)],
            api_tokens=[
                ApiToken(name="reader", scopes={Scope.READ}, secret=SecretStr(f"reader-{TOKEN}"))
            ],
        ),
        now=lambda: NOW,
        extra_routes=[Route("/api/incidents", broken_route)],
    )
    caplog.set_level("DEBUG")
    http = TestClient(app)
    body = fixture_body("zulip__resolved_single_alert.json")
    webhook = post(http, body, **{"x-request-id": "req-1"})
    route = http.get(
        "/api/incidents", headers={"authorization": f"Bearer reader-{TOKEN}", "x-request-id": "req-2"}
    )
    for response, request_id in ((webhook, "req-1"), (route, "req-2")):
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-request-id"] == request_id
        assert response.json()["error"] == "internal_error"
        assert response.json()["request_id"] == request_id
        assert TOKEN not in response.text
    assert "request_id=req-1 unhandled RuntimeError" in caplog.text
    assert "request_id=req-2 unhandled OverflowError" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_content_length_int_cannot_read_is_no_500() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    def request(content_length: str) -> Request:
        headers = [(b"content-length", content_length.encode("latin-1"))]
        return Request({"type": "http", "method": "POST", "headers": headers}, receive)

    # "²".isdigit() is True but int() refuses it: the declared length is ignored, the body counted.
    assert await read_capped(request("\u00b2"), 1024) == b"{}"
    with pytest.raises(BodyTooLarge):  # more than 4300 digits: int() refuses, yet it is too large
        await read_capped(request("9" * 5000), 1024)
    assert await read_capped(request("0" * 5000 + "2"), 1024) == b"{}"


def test_secrets_never_in_logs(client, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    body = fixture_body("zulip__resolved_single_alert.json")
    post(client, body)
    post(client, body, authorization=f"Bearer {TOKEN}x")
    post(client, body, authorization="Basic YW11c2VyOmFtcGFzcw==")
    assert "request_id=" in caplog.text
    assert TOKEN not in caplog.text
    assert "ampass" not in caplog.text
    assert "YW11c2VyOmFtcGFzcw" not in caplog.text


class GatedPublisher(RecordingPublisher):
    """Kafka that acknowledges only when the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def publish(self, records: Sequence[AlertRecord]) -> None:
        await self.gate.wait()
        await super().publish(records)


async def test_payloads_take_turns_and_an_overlong_wait_is_503() -> None:
    publisher = GatedPublisher()
    app = create_app(
        publisher=publisher,
        auth=WebhookAuth([SecretStr(TOKEN)]),
        now=lambda: NOW,
        max_concurrent_publishes=1,
        publish_queue_seconds=0.05,
    )
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    body = fixture_body("zulip__resolved_single_alert.json")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sevflow") as http:
        first = asyncio.create_task(http.post("/webhooks/alertmanager", content=body, headers=headers))
        await asyncio.sleep(0.01)
        second = await http.post("/webhooks/alertmanager", content=body, headers=headers)
        assert second.status_code == 503
        assert second.json()["error"] == "overloaded"
        assert second.headers["retry-after"]
        publisher.gate.set()
        assert (await first).status_code == 200
    assert len(publisher.records) == 1


async def test_sender_that_hung_up_is_remembered_for_its_retry(publisher) -> None:  # type: ignore[no-untyped-def]
    app = create_app(publisher=publisher, auth=WebhookAuth([SecretStr(TOKEN)]), now=lambda: NOW)
    body = fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json").encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, object]:
        # The body, then the connection is gone (Alertmanager's deadline passed).
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = webhook_scope()
    await app(scope, receive, send)
    assert len(publisher.records) == 3
    assert publisher.unanswered == publisher.records


class ServerConnection:
    """An ASGI ``receive`` shaped like uvicorn's: the body, then it waits until the peer closes."""

    def __init__(self, body: bytes) -> None:
        self.body: bytes | None = body
        self.closed = False
        self.changed = asyncio.Event()

    async def receive(self) -> dict[str, object]:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.closed:
            await self.changed.wait()
        return {"type": "http.disconnect"}


@pytest.mark.parametrize("closed", [False, True])
async def test_hung_up_answers_without_waiting(closed: bool) -> None:
    connection = ServerConnection(b"{}")
    request = Request({"type": "http", "method": "POST", "headers": []}, connection.receive)
    assert await read_capped(request, 1024) == b"{}"
    connection.closed = closed
    assert await asyncio.wait_for(hung_up(request), 1) is closed
    # The abandoned wait left nothing behind: a later disconnect wakes no stale waiter.
    assert not connection.changed._waiters


async def test_connected_sender_is_not_noted_as_unanswered(publisher) -> None:  # type: ignore[no-untyped-def]
    app = create_app(publisher=publisher, auth=WebhookAuth([SecretStr(TOKEN)]), now=lambda: NOW)
    body = fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json").encode()
    connection = ServerConnection(body)
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = webhook_scope()
    await asyncio.wait_for(app(scope, connection.receive, send), 5)
    assert sent[0]["status"] == 200
    assert len(publisher.records) == 3
    assert publisher.unanswered == []


def webhook_scope() -> dict[str, Any]:
    """The ASGI scope of an authenticated JSON POST to the webhook, as uvicorn builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/alertmanager",
        "raw_path": b"/webhooks/alertmanager",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


def test_unknown_paths_and_methods_are_answered_in_json(client) -> None:  # type: ignore[no-untyped-def]
    missing = client.get("/webhooks/alertmanger")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no such path: /webhooks/alertmanger"}
    wrong = client.get("/webhooks/alertmanager")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json() == {
        "error": "method_not_allowed",
        "message": "GET is not allowed on /webhooks/alertmanager (allowed: POST)",
    }


@pytest.mark.parametrize("path", ["/webhooks/alertmanager/", "/health/", "/metrics/"])
def test_a_path_with_a_slash_added_is_404_not_a_redirect(client, path: str) -> None:  # type: ignore[no-untyped-def]
    """Starlette answered a bare 307 to the other spelling, before any credential check, with
    no request id or log line, and a Location built from the caller's Host header."""
    answer = client.post(path, headers={"host": "evil.example"}, follow_redirects=False)
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.json() == {"error": "not_found", "message": f"no such path: {path}"}


@pytest.mark.parametrize("blank", ["", " "])
def test_an_empty_configured_token_lets_nobody_in(publisher, blank: str) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        publisher=publisher, auth=WebhookAuth([SecretStr(blank)], [SecretStr(blank)]), now=lambda: NOW
    )
    http = TestClient(app)
    body = fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    for header in ("Bearer ", "Bearer", f"Bearer {blank}", "Basic ", "Basic", "Basic IA=="):
        assert post(http, body, authorization=header).status_code == 401, header
    assert publisher.records == []


def test_two_authorization_headers_are_refused_as_ambiguous(client, publisher) -> None:  # type: ignore[no-untyped-def]
    """The first of two Authorization headers was believed, where a proxy in front may check
    the last: a request carrying a wrong one and a right one could pass either check."""
    body = fixture_body("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    headers = [
        ("authorization", f"Bearer {TOKEN}"),
        ("authorization", "Bearer someone-elses"),
        ("content-type", "application/json"),
    ]
    answer = client.post("/webhooks/alertmanager", content=body, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (400, "ambiguous_credentials")
    assert publisher.records == []
    one = client.post("/webhooks/alertmanager", content=body, headers=headers[::2])
    assert one.status_code == 200
