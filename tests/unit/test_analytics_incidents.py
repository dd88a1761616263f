"""Incident queries: filters, keyset pagination and the alerts an incident has seen."""

from datetime import timedelta

import pytest

from analytics.incidents import (
    CursorError,
    IncidentFilter,
    alerts_of,
    decode_cursor,
    find_incidents,
    load_incident,
)
from models.events import IncidentState
from models.severity import Severity
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert
from tests.unit.test_analytics_scenario import POLICY, build_scenario


async def titles(engine, criteria: IncidentFilter) -> list[str]:  # type: ignore[no-untyped-def]
    page = await find_incidents(engine, criteria, limit=100)
    return [i.slug for i in page.incidents]


async def test_filters_by_state_severity_service_and_window(engine) -> None:  # type: ignore[no-untyped-def]
    await build_scenario(engine)
    assert await titles(engine, IncidentFilter()) == [
        "queue-backlog",
        "ui-glitch",
        "high-latency",
        "checkout-down",
        "high-error-rate",
    ]
    assert await titles(engine, IncidentFilter(state=IncidentState.TRIGGERED)) == ["ui-glitch"]
    assert await titles(engine, IncidentFilter(severity=Severity.SEV3)) == [
        "queue-backlog",
        "high-latency",
    ]
    assert await titles(engine, IncidentFilter(service="checkout")) == ["checkout-down"]
    assert await titles(engine, IncidentFilter(service="nope")) == []
    window = IncidentFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    assert await titles(engine, window) == ["high-latency", "checkout-down"]
    combined = IncidentFilter(severity=Severity.SEV3, state=IncidentState.RESOLVED, service="search")
    assert await titles(engine, combined) == ["high-latency"]


async def test_pages_cover_every_incident_once_even_with_equal_open_times(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY)
    # 23 incidents, many opened at the very same instant (ties broken by id), 5 of service "b"
    records = [
        alert(f"Alert{n}", at=T0 + timedelta(minutes=n // 4), service="b" if n % 5 == 0 else "a")
        for n in range(23)
    ]
    await pipeline.process_alerts(records)
    for criteria, expected in ((IncidentFilter(), 23), (IncidentFilter(service="b"), 5)):
        seen: list[str] = []
        cursor = None
        while True:
            page = await find_incidents(engine, criteria, limit=2, cursor=cursor)
            seen.extend(i.id for i in page.incidents)
            if page.next_cursor is None:
                break
            assert len(page.incidents) == 2
            cursor = page.next_cursor
        assert len(seen) == expected
        assert len(set(seen)) == expected
    exact = await find_incidents(engine, IncidentFilter(service="b"), limit=5)
    assert len(exact.incidents) == 5
    assert exact.next_cursor is None  # nothing after the last one: no empty extra page


async def test_bad_cursor_and_limit_are_refused(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CursorError):
        decode_cursor("not-a-cursor")
    with pytest.raises(CursorError):
        await find_incidents(engine, IncidentFilter(), cursor="bm9waXBl")  # "nopipe"
    with pytest.raises(ValueError, match="limit"):
        await find_incidents(engine, IncidentFilter(), limit=0)


async def test_detail_has_timeline_and_latest_state_of_each_alert(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    detail = await load_incident(engine, scenario.ids["CheckoutDown"])
    assert detail is not None
    assert [e.sequence for e in detail.timeline] == [1, 2, 3, 4]
    assert [(a.labels["alertname"], a.status) for a in detail.alerts] == [("CheckoutDown", "resolved")]
    assert alerts_of(list(reversed(detail.timeline))) == list(detail.alerts)
    assert await load_incident(engine, "inc_0000000000000000") is None
