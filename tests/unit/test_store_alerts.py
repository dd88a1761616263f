"""The alerts repository on SQLite and PostgreSQL: idempotent, order-safe upserts."""

from datetime import UTC, datetime, timedelta

import pytest

from models.alert import AlertRecord
from store.alerts import AlertStore
from store.db import UnsupportedDatabaseError, normalise_url

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def record(status: str = "firing", received: datetime = T0, **extra: object) -> AlertRecord:
    fields: dict[str, object] = {
        "fingerprint": "c66e8c4648513850",
        "status": status,
        "labels": {"alertname": "HighErrorRate", "instance": "api-1"},
        "annotations": {"summary": "errors"},
        "starts_at": T0 - timedelta(minutes=5),
        "ends_at": None if status == "firing" else received,
        "receiver": "sevflow",
        "group_key": '{}:{alertname="HighErrorRate"}',
        "received_at": received,
    }
    fields.update(extra)
    return AlertRecord.model_validate(fields)


async def test_insert_then_resolve(engine) -> None:  # type: ignore[no-untyped-def]
    store = AlertStore(engine)
    await store.upsert(record())
    await store.upsert(record("resolved", T0 + timedelta(minutes=3)))
    (row,) = await store.all()
    assert row["status"] == "resolved"
    assert row["ends_at"] == T0 + timedelta(minutes=3)
    assert row["first_received_at"] == T0
    assert row["last_received_at"] == T0 + timedelta(minutes=3)
    assert row["starts_at"].tzinfo is not None
    assert row["labels"] == {"alertname": "HighErrorRate", "instance": "api-1"}


async def test_redelivery_and_reordering_change_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    store = AlertStore(engine)
    resolved = record("resolved", T0 + timedelta(minutes=3))
    await store.upsert(record())
    await store.upsert(resolved)
    before = await store.get(resolved.fingerprint)
    await store.upsert(resolved)  # redelivered
    await store.upsert(record())  # an older record arriving late
    assert await store.get(resolved.fingerprint) == before


async def test_unknown_alert_is_none(engine) -> None:  # type: ignore[no-untyped-def]
    assert await AlertStore(engine).get("0000000000000000") is None


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg"),
        ("postgres://u:p@h/d", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite+aiosqlite"),
    ],
)
def test_driver_chosen_for_asyncio(url: str, driver: str) -> None:
    assert normalise_url(url, asynchronous=True).drivername == driver


def test_unsupported_database_refused() -> None:
    with pytest.raises(UnsupportedDatabaseError, match="mysql"):
        normalise_url("mysql://u:p@h/d", asynchronous=True)
