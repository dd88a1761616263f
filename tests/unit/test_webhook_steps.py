"""receiver/webhook.py's steps answer in the documented order: a request that fails several steps
gets the refusal of the first one it fails (auth, size, parse, validate, admit, publish, answer).

Each case breaks one step and every step after it, so an answer from a later step would show a
step run out of order."""

import json

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from receiver.app import create_app
from receiver.auth import WebhookAuth
from receiver.kafka import MAX_RECORD_BYTES
from receiver.ratelimit import RateLimiter
from tests.unit.test_receiver_http import NOW, TOKEN, RecordingPublisher, fixture_body

LIMIT = 64 * 1024
SINGLE = "zulip__resolved_single_alert.json"
GOOD = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
#: Not JSON, and over the body limit.
BAD_BODY = b"{" * (LIMIT + 1)


def _oversized_alert() -> bytes:
    """A valid payload whose one alert makes a record over Kafka's limit."""
    payload = json.loads(fixture_body(SINGLE))
    payload["alerts"][0]["annotations"]["description"] = "x" * MAX_RECORD_BYTES
    return json.dumps(payload).encode()


CASES = {
    # step broken (with all later ones): headers, body, Kafka down, expected status and error
    "auth: rate limit": ({}, BAD_BODY, True, 429, "rate_limited"),
    "auth: credentials": ({"authorization": "Bearer wrong"}, BAD_BODY, True, 401, "unauthorized"),
    "size: content type": (
        {"content-type": "text/plain"},
        BAD_BODY,
        True,
        415,
        "unsupported_media_type",
    ),
    "size: bytes": ({}, BAD_BODY, True, 413, "payload_too_large"),
    "parse: JSON": ({}, b"{", True, 400, "malformed_json"),
    "parse: contract": ({}, b'{"version": "3"}', True, 422, "invalid_payload"),
    "validate: record size": ({}, None, True, 413, "record_too_large"),
    "publish: Kafka": ({}, fixture_body(SINGLE).encode(), True, 503, "kafka_unavailable"),
    "answer": ({}, fixture_body(SINGLE).encode(), False, 200, None),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_first_failing_step_answers(case: str) -> None:
    headers, body, kafka_down, status, error = CASES[case]
    publisher = RecordingPublisher()
    publisher.down = kafka_down
    limiter = RateLimiter(rate=1, burst=1)
    app = create_app(
        publisher=publisher,
        auth=WebhookAuth([SecretStr(TOKEN)]),
        now=lambda: NOW,
        max_body_bytes=LIMIT if body is not None else 2 * MAX_RECORD_BYTES,
        rate_limiter=limiter,
        monotonic=lambda: 0.0,
    )
    if case == "auth: rate limit":
        assert limiter.acquire("testclient", 0.0) == 0.0  # the source's one token, spent
    sent = body if body is not None else _oversized_alert()
    response = TestClient(app).post("/webhooks/alertmanager", content=sent, headers={**GOOD, **headers})
    assert response.status_code == status, response.text
    if error is not None:
        assert response.json()["error"] == error
        assert publisher.records == []
    else:
        assert len(publisher.records) == 1
