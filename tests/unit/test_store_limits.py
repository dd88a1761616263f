"""Inbound values never exceed what the store can hold: the receiver refuses ``limit + 1`` with a
422 naming the field, and the store accepts ``limit`` exactly, on SQLite and PostgreSQL alike
(SQLite ignores VARCHAR lengths, PostgreSQL enforces them)."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from starlette.testclient import TestClient

from models.alert import FINGERPRINT_MAX, RECEIVER_MAX, AlertRecord
from models.alertmanager import ZERO_TIME
from models.incident import COMMAND_ID_MAX, INCIDENT_ID_MAX, Command
from receiver.app import create_app
from receiver.auth import WebhookAuth
from store.incidents import IncidentStore
from store.schema import alerts, commands
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert, command
from tests.conftest import load_fixture
from tests.unit.test_pipeline_store import POLICY
from tests.unit.test_receiver_http import NOW, TOKEN, RecordingPublisher


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def client(publisher: RecordingPublisher) -> TestClient:
    app = create_app(publisher=publisher, auth=WebhookAuth([SecretStr(TOKEN)]), now=lambda: NOW)
    return TestClient(app)


def payload(**changes: Any) -> dict[str, Any]:
    document = load_fixture("zulip__resolved_single_alert.json")
    alert_changes = changes.pop("alert", {})
    document.update(changes)
    document["alerts"][0].update(alert_changes)
    return document


def post(client: TestClient, document: dict[str, Any]):  # type: ignore[no-untyped-def]
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    return client.post("/webhooks/alertmanager", content=json.dumps(document), headers=headers)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"alert": {"fingerprint": "f" * (FINGERPRINT_MAX + 1)}}, "alerts.0.fingerprint"),
        ({"receiver": "r" * (RECEIVER_MAX + 1)}, "receiver"),
        ({"receiver": "team\x00pager"}, "receiver"),
        ({"groupKey": "{}:{a=\x00}"}, "groupKey"),
        ({"alert": {"labels": {"alertname": "Disk\x00Full"}}}, "alerts.0.labels"),
        ({"alert": {"annotations": {"summary\x00": "x"}}}, "alerts.0.annotations"),
        ({"alert": {"generatorURL": "http://x/\x00"}}, "alerts.0.generatorURL"),
        ({"alert": {"startsAt": "0001-01-01T00:00:00Z"}}, "alerts.0.startsAt"),
        ({"alert": {"startsAt": "1969-12-31T23:59:59Z"}}, "alerts.0.startsAt"),
        ({"alert": {"startsAt": "9999-12-31T23:59:59Z"}}, "alerts.0.startsAt"),
        ({"alert": {"endsAt": "9000-01-01T00:00:00Z"}}, "alerts.0.endsAt"),
        ({"alert": {"endsAt": "0500-01-01T00:00:00Z"}}, "alerts.0.endsAt"),
    ],
)
def test_over_the_store_limit_is_422_naming_the_field(client, publisher, changes, field) -> None:  # type: ignore[no-untyped-def]
    response = post(client, payload(**changes))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_payload"
    assert field in {d["field"] for d in response.json()["details"]}
    assert publisher.records == []


def test_go_s_zero_time_is_no_end_and_the_time_limits_themselves_are_accepted(client, publisher) -> None:  # type: ignore[no-untyped-def]
    early = {"startsAt": "1970-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "status": "firing"}
    late = {"startsAt": "8999-12-31T23:59:59.999Z", "endsAt": "8999-12-31T23:59:59.999Z"}
    assert post(client, payload(status="firing", alert=early)).status_code == 200
    assert post(client, payload(alert=late)).status_code == 200
    first, second = publisher.records
    assert (first.starts_at.year, first.ends_at) == (1970, None)
    assert second.ends_at is not None
    assert second.ends_at.year == 8999


def test_the_limits_themselves_are_accepted(client, publisher) -> None:  # type: ignore[no-untyped-def]
    document = payload(receiver="r" * RECEIVER_MAX, alert={"fingerprint": "f" * FINGERPRINT_MAX})
    assert post(client, document).status_code == 200
    [record] = publisher.records
    assert (len(record.fingerprint), len(record.receiver)) == (FINGERPRINT_MAX, RECEIVER_MAX)


def test_records_over_the_limits_do_not_decode() -> None:
    good = alert(instance="a")
    for change in (
        {"fingerprint": "f" * (FINGERPRINT_MAX + 1)},
        {"receiver": "r" * (RECEIVER_MAX + 1)},
        {"labels": {"alertname": "a\x00"}},
        {"group_key": "\x00"},
        {"received_at": T0.replace(tzinfo=None)},  # naive: compared with aware ones, or refused
        {"starts_at": T0.replace(tzinfo=None)},  # by the store's UTC columns
        {"starts_at": ZERO_TIME},  # outside 1970 … 9000: the lifecycle's arithmetic overflowed
        {"ends_at": ZERO_TIME},
        {"received_at": datetime(9999, 12, 31, tzinfo=UTC)},
    ):
        raw = good.model_copy(update=change).to_bytes()
        with pytest.raises(ValidationError):
            AlertRecord.from_bytes(raw)
    raw = command("inc_1").model_copy(update={"command_id": "c" * (COMMAND_ID_MAX + 1)})
    with pytest.raises(ValidationError):
        Command.model_validate_json(raw.model_dump_json())
    raw = command("inc_1").model_copy(update={"incident_id": "i" * (INCIDENT_ID_MAX + 1)})
    with pytest.raises(ValidationError):
        Command.model_validate_json(raw.model_dump_json())
    for when in (T0.replace(tzinfo=None), ZERO_TIME):
        raw = command("inc_1").model_copy(update={"requested_at": when})
        with pytest.raises(ValidationError):
            Command.model_validate_json(raw.model_dump_json())


async def test_the_store_holds_every_limit(engine) -> None:  # type: ignore[no-untyped-def]
    record = alert(instance="a").model_copy(
        update={"fingerprint": "f" * FINGERPRINT_MAX, "receiver": "r" * RECEIVER_MAX}
    )
    AlertRecord.from_bytes(record.to_bytes())  # decodes: within every limit
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY)
    [opened] = await pipeline.process_alerts([record])
    long_command = command(opened.incident_id).model_copy(update={"command_id": "c" * COMMAND_ID_MAX})
    assert (await pipeline.process_command(long_command)).applied
    async with engine.connect() as conn:
        row = (await conn.execute(select(alerts))).mappings().one()
        stored = (await conn.execute(select(commands.c.command_id))).scalar_one()
    assert (row["fingerprint"], row["receiver"]) == (record.fingerprint, record.receiver)
    assert stored == long_command.command_id
    assert row["first_received_at"] == T0
