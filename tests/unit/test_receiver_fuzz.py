"""Property-based fuzz of the webhook: bodies and headers never make it crash or answer 5xx.

With Kafka up, the only answers are 200 (and then exactly one record per alert was written) or a
4xx with a JSON error body (and then nothing was written). With Kafka down, 200 becomes 503.
"""

import base64
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.testclient import TestClient

from receiver.app import create_app
from receiver.auth import WebhookAuth
from tests.conftest import AM_FIXTURES, load_fixture
from tests.unit.test_receiver_http import NOW, TOKEN, RecordingPublisher

FIXTURES = sorted(p.name for p in AM_FIXTURES.glob("*.json") if "request_log" not in p.name)
BASIC = "Basic " + base64.b64encode(b"amuser:ampass").decode()
REFUSALS = {400, 401, 413, 415, 422}

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    """A real payload with one value somewhere replaced by arbitrary JSON, or a key dropped."""
    document: Any = load_fixture(draw(st.sampled_from(FIXTURES)))
    node = document
    for _ in range(draw(st.integers(0, 3))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            if isinstance(node[key], dict | list) and node[key]:
                node = node[key]
        elif isinstance(node, list) and node:
            node = node[draw(st.integers(0, len(node) - 1))]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(json_values)
    return json.dumps(document).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_fixture(),
    st.sampled_from(FIXTURES).map(lambda n: (AM_FIXTURES / n).read_bytes()),
)
authorizations = st.integers(0, 9).flatmap(
    lambda n: (
        st.just(f"Bearer {TOKEN}")
        if n < 6
        else st.just(BASIC)
        if n < 8
        else st.sampled_from(["Bearer wrong", ""]) | header_text
    )
)
content_types = st.integers(0, 9).flatmap(
    lambda n: (
        st.just("application/json")
        if n < 7
        else st.sampled_from(["Application/JSON; charset=utf-8", "text/plain"]) | header_text
    )
)


def alerts_in(body: bytes) -> int:
    return len(json.loads(body)["alerts"])


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    body=bodies,
    authorization=authorizations,
    content_type=content_types,
    request_id=header_text,
    kafka_down=st.booleans(),
)
def test_no_crash_no_5xx_no_record_for_refusals(
    body: bytes, authorization: str, content_type: str, request_id: str, kafka_down: bool
) -> None:
    publisher = RecordingPublisher()
    publisher.down = kafka_down
    app = create_app(
        publisher=publisher,
        auth=WebhookAuth([SecretStr(TOKEN)], [SecretStr("amuser:ampass")]),
        now=lambda: NOW,
        max_body_bytes=64 * 1024,
    )
    client = TestClient(app, raise_server_exceptions=True)
    headers = {"content-type": content_type, "x-request-id": request_id}
    if authorization:
        headers["authorization"] = authorization
    response = client.post("/webhooks/alertmanager", content=body, headers=headers)
    event(f"status {response.status_code}")
    assert response.headers["x-request-id"]
    if response.status_code == 200:
        assert not kafka_down
        assert len(publisher.records) == alerts_in(body) == response.json()["alerts"]
        return
    assert publisher.records == []
    if response.status_code == 503:
        assert kafka_down
        assert response.headers["retry-after"]
    else:
        assert response.status_code in REFUSALS, response.text
    error = response.json()
    assert isinstance(error["error"], str)
    assert error["message"]
    assert TOKEN not in response.text
    assert "ampass" not in response.text
