"""Acknowledgement end to end on the real broker: a signed Slack click and an API call become
commands on Kafka (the real CommandPublisher), the worker's pipeline applies them, escalation stops,
and the outbox relay puts `escalated` and `acknowledged` (who, through what) on incident-events."""

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from kafka_admin.topics import ensure_topic
from models.escalation import playbook_policy
from models.incident import Command, LifecyclePolicy
from receiver.access import protect_all
from receiver.callbacks import callback_routes, slack_signature
from receiver.commands import CommandPublisher
from receiver.slack_callers import SlackCallers
from store.driver_outbox import DriverOutbox
from store.incidents import IncidentStore
from streams.escalation import run_escalations
from streams.pipeline import Pipeline
from streams.relay import KafkaEventPublisher, OutboxRelay
from streams.rules import load_rules
from testkit.fakes.slack import FakeSlack
from tests.builders import T0, alert, api_credentials

pytestmark = pytest.mark.integration

M = timedelta(minutes=1)
SECRET = SecretStr("slack-signing-secret-integration")
TOKEN = SecretStr("api-token-integration")


async def read_all(bootstrap: str, topic: str, want: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(m.value for ms in batch.values() for m in ms)
            if len(values) >= want:
                break
    finally:
        await consumer.stop()
    return values


async def test_slack_ack_through_kafka_stops_escalation(
    engine: AsyncEngine, relay_outbox: Callable[..., DriverOutbox], kafka_bootstrap: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    commands_topic, events_topic = f"test-commands-{suffix}", f"test-events-{suffix}"
    await ensure_topic(kafka_bootstrap, commands_topic, 2)
    await ensure_topic(kafka_bootstrap, events_topic, 2)
    store = IncidentStore(engine)
    pipeline = Pipeline(store, load_rules(None), LifecyclePolicy())
    (opened, *_) = await pipeline.process_alerts([alert("ApiDown", severity="sev1", service="api")])
    sev2 = await pipeline.process_alerts([alert("CheckoutErrors", severity="sev2", service="shop")])
    incident_id, other_id = opened.incident_id, sev2[0].incident_id
    assert len(await run_escalations(store, playbook_policy(), T0)) == 2  # level 1 of each

    # A Slack click (signed) and an API resolve of the other incident, through real Kafka.
    now = T0 + 5 * M
    publisher = CommandPublisher(kafka_bootstrap, commands_topic)
    slack_api = FakeSlack("xoxb-ack-test").start()
    slack_api.add_user("U1", "T1")
    callers = SlackCallers(SecretStr("xoxb-ack-test"), slack_api.url, "T1", allow_insecure=True)
    routes = callback_routes(
        publisher, slack_signing_secret=SECRET, slack_callers=callers, clock=lambda: now
    )
    app = Starlette(routes=protect_all(routes, api_credentials(TOKEN)))
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1", "username": "alice", "team_id": "T1"},
        "actions": [{"action_id": "ack", "value": incident_id, "action_ts": "1.2"}],
    }
    body = f"payload={quote(json.dumps(payload))}".encode()
    ts = str(int(now.timestamp()))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sevflow.test"
        ) as http:
            slack = await http.post(
                "/callbacks/slack/interactivity",
                content=body,
                headers={
                    "x-slack-request-timestamp": ts,
                    "x-slack-signature": slack_signature(SECRET, ts, body),
                },
            )
            forged = await http.post(
                "/callbacks/slack/interactivity",
                content=body,
                headers={"x-slack-request-timestamp": ts, "x-slack-signature": "v0=" + "0" * 64},
            )
            api = await http.post(
                f"/api/incidents/{other_id}/resolve",
                json={"by": "bob"},
                headers={"authorization": f"Bearer {TOKEN.get_secret_value()}"},
            )
    finally:
        await publisher.close()
        await callers.close()
        slack_api.close()
    assert (slack.status_code, forged.status_code, api.status_code) == (200, 401, 202)

    # The worker's side: consume the commands topic and apply them (twice: idempotent).
    raw = await read_all(kafka_bootstrap, commands_topic, 2)
    commands = [Command.model_validate_json(v) for v in raw]
    # The API's actor is the token's name; the body's "by" is only a note.
    assert sorted((c.action, c.actor.via, c.actor.name, c.actor.note) for c in commands) == [
        ("acknowledge", "slack", "alice", None),
        ("resolve", "api", "ops", "bob"),
    ]
    for command in commands + commands:
        await pipeline.process_command(command)

    # Long past every deadline: nothing escalates any more.
    assert await run_escalations(store, playbook_policy(), T0 + 2 * 60 * M) == []

    relay_publisher = KafkaEventPublisher(kafka_bootstrap, events_topic, f"{events_topic}-relay")
    relay = OutboxRelay(relay_outbox("w"), relay_publisher)
    try:
        while await relay.run_once(T0 + 2 * 60 * M):
            pass
    finally:
        await relay_publisher.close()
    events = [json.loads(v) for v in await read_all(kafka_bootstrap, events_topic, 6)]
    mine = [
        (e["type"], e["actor"]["via"], e["actor"].get("name"))
        for e in events
        if e["incident_id"] == incident_id
    ]
    assert mine == [
        ("opened", "alertmanager", None),
        ("escalated", "sevflow", None),
        ("acknowledged", "slack", "alice"),
    ]
    theirs = [(e["type"], e["actor"]["via"]) for e in events if e["incident_id"] == other_id]
    assert theirs == [("opened", "alertmanager"), ("escalated", "sevflow"), ("resolved", "api")]
