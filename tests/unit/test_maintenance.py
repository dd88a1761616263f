"""Maintenance windows: pure rules, the pipeline holding and releasing alerts, and the CLI."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.events import EventType
from models.incident import LifecyclePolicy
from models.maintenance import MaintenanceWindow, covering_window, released_record
from sevflow.admin import window_json
from sevflow.commands.maintenance import parse_when
from store.incidents import IncidentStore
from store.maintenance import MaintenanceStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.local import REPO
from tests.builders import T0, alert, command

WINDOW = MaintenanceWindow(
    id="mw_1",
    matchers=('service="checkout"',),
    starts_at=T0,
    ends_at=T0 + timedelta(hours=1),
    comment="database upgrade",
)


def test_window_covers_matching_alerts_while_active() -> None:
    labels = {"alertname": "CheckoutDown", "service": "checkout"}
    assert WINDOW.covers(labels, {}, T0)
    assert WINDOW.covers(labels, {}, T0 + timedelta(minutes=59))
    assert not WINDOW.covers(labels, {}, T0 + timedelta(hours=1))  # the end is exclusive
    assert not WINDOW.covers(labels, {}, T0 - timedelta(seconds=1))
    assert not WINDOW.covers({"service": "search"}, {}, T0)


def test_firing_is_held_and_resolution_follows_its_firing() -> None:
    firing = alert(service="checkout", at=T0 + timedelta(minutes=5))
    assert covering_window(firing, [WINDOW], None) == "mw_1"
    assert covering_window(alert(service="search", at=T0), [WINDOW], None) is None
    resolved = alert(service="checkout", status="resolved", at=T0 + timedelta(minutes=6))
    assert covering_window(resolved, [WINDOW], None) is None  # resolving never pages: not held


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ends_at": T0}, "must end after it starts"),
        ({"matchers": ("service",)}, "not a matcher"),
        ({"matchers": ()}, "at least 1"),
        ({"matchers": ('classification.rule=""',)}, "labels and annotations only"),
    ],
)
def test_bad_windows_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MaintenanceWindow.model_validate(WINDOW.model_dump() | changes)


def test_parse_when() -> None:
    assert parse_when("now", T0) == T0
    assert parse_when("+90m", T0) == T0 + timedelta(minutes=90)
    assert parse_when("+2h", T0) == T0 + timedelta(hours=2)
    assert parse_when("2026-11-27T14:00:00Z", T0) == T0 + timedelta(hours=2)
    with pytest.raises(ValueError, match="no time zone"):
        parse_when("2026-11-27T14:00:00", T0)
    with pytest.raises(ValueError, match="not a time"):
        parse_when("tomorrow", T0)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_when_refuses_a_time_beyond_the_calendar_in_utc(text: str) -> None:
    with pytest.raises(ValueError, match="out of range once converted to UTC"):
        parse_when(text, T0)


@pytest.mark.parametrize(
    "text", ["+99999999999d", "+3000000d", "+99999999999999999999999m", "+" + "9" * 5_000 + "h"]
)
def test_parse_when_refuses_offsets_beyond_the_calendar(text: str) -> None:
    with pytest.raises(ValueError, match="too far in the future") as refused:
        parse_when(text, T0)
    assert "digits" not in str(refused.value)  # (not int()'s own words about its digit limit)
    assert len(str(refused.value)) < 80


@pytest.mark.parametrize(
    ("text", "words"),
    [("x" * 10_000, "not a time"), ("2026-01-01T00:00:00" + " " * 10_000, "not a time")],
)
def test_parse_when_quotes_a_long_text_cut(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as refused:
        parse_when(text, T0)
    assert len(str(refused.value)) < 120
    assert "…" in str(refused.value)


async def test_held_alerts_page_nobody_until_the_window_ends(engine) -> None:  # type: ignore[no-untyped-def]
    await MaintenanceStore(engine).add(WINDOW)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    during = T0 + timedelta(minutes=10)
    batch = [
        alert("CheckoutDown", service="checkout", instance="a", at=during),
        alert("CheckoutDown", service="checkout", instance="b", at=during),
        alert("SearchSlow", service="search", at=during),
    ]
    events = await pipeline.process_alerts(batch)
    assert [(e.type, e.incident.title) for e in events] == [(EventType.OPENED, "SearchSlow fired")]
    # Re-sent while held: nothing; one held alert resolves inside the window: still nothing.
    assert await pipeline.process_alerts(batch[:2]) == []
    resolved = alert(
        "CheckoutDown",
        service="checkout",
        instance="b",
        status="resolved",
        at=during + timedelta(minutes=5),
    )
    assert await pipeline.process_alerts([resolved]) == []
    assert len(await pipeline.store.list_incidents()) == 1

    assert await pipeline.release_windows(T0 + timedelta(minutes=59)) == []  # not over yet
    released = await pipeline.release_windows(T0 + timedelta(hours=1))
    assert [e.type for e in released] == [EventType.OPENED]  # only the one still firing
    assert released[0].alert is not None
    assert released[0].alert.labels["instance"] == "a"
    assert released[0].occurred_at == T0 + timedelta(hours=1)
    assert await pipeline.release_windows(T0 + timedelta(hours=2)) == []  # released once
    incidents = await pipeline.store.list_incidents()
    assert sorted(i.title for i in incidents) == ["CheckoutDown fired", "SearchSlow fired"]


async def test_a_late_copy_of_an_earlier_resolution_does_not_release_a_held_alert(engine) -> None:  # type: ignore[no-untyped-def]
    """An alert held by a window fired again after an earlier resolution; that resolution's late
    copy (an HA peer's) must not mark the held alert resolved, or the window's end pages nobody."""
    await MaintenanceStore(engine).add(WINDOW)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    first = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=5))
    resolution = alert(
        "CheckoutDown", service="checkout", status="resolved", at=T0 + timedelta(minutes=6)
    )
    again = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=20))
    assert await pipeline.process_alerts([first, resolution, again]) == []
    late = resolution.model_copy(update={"received_at": T0 + timedelta(minutes=21)})
    assert await pipeline.process_alerts([late]) == []
    released = await pipeline.release_windows(T0 + timedelta(hours=1))
    assert [e.type for e in released] == [EventType.OPENED]


@pytest.mark.parametrize("still_firing_at_the_end", [False, True])
async def test_an_alert_firing_before_the_window_stays_in_its_incident(  # type: ignore[no-untyped-def]
    engine, still_firing_at_the_end: bool
) -> None:
    """Alertmanager re-sends a firing alert during a window that began after it fired: it stays in
    its incident, so its resolution resolves the incident and the window's end adds nothing."""
    pipeline = Pipeline(
        IncidentStore(engine), load_rules(None), LifecyclePolicy(quiet_period=timedelta(minutes=5))
    )
    before = T0 - timedelta(minutes=10)
    (opened,) = await pipeline.process_alerts([alert("CheckoutDown", service="checkout", at=before)])
    await MaintenanceStore(engine).add(WINDOW)
    resent = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=10))
    assert await pipeline.process_alerts([resent]) == []
    resolved_at = T0 + timedelta(minutes=20 if not still_firing_at_the_end else 80)
    if still_firing_at_the_end:
        assert await pipeline.release_windows(T0 + timedelta(hours=1)) == []
    resolution = alert("CheckoutDown", service="checkout", status="resolved", at=resolved_at)
    (event,) = await pipeline.process_alerts([resolution])
    assert (event.type, event.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert event.incident.alerts_firing == 0
    (closed,) = await pipeline.expire_quiet(resolved_at + timedelta(minutes=5))
    assert (closed.type, closed.incident_id) == (EventType.RESOLVED, opened.incident_id)
    if not still_firing_at_the_end:
        assert await pipeline.release_windows(T0 + timedelta(hours=1)) == []
    assert len(await pipeline.store.list_incidents()) == 1


async def test_a_record_stamped_in_a_released_window_is_not_held(engine) -> None:  # type: ignore[no-untyped-def]
    """Found by the model-based test (tests/model): a window is released once record time passed
    its end; then a record a slower receiver clock stamped inside the window is applied. Held by
    the window, it would wait for a release that already ran, for ever; it is handled normally."""
    pipeline = Pipeline(
        IncidentStore(engine), load_rules(None), LifecyclePolicy(quiet_period=timedelta(minutes=5))
    )
    await MaintenanceStore(engine).add(WINDOW)
    assert await pipeline.release_windows(T0 + timedelta(hours=1, minutes=1)) == []
    late = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=59))
    (opened, *_) = await pipeline.process_alerts([late])
    assert opened.type is EventType.OPENED
    (incident,) = await pipeline.store.list_incidents()
    assert incident.alerts_firing == 1


async def test_an_alert_held_while_its_window_was_being_released_is_released_at_the_next_tick(
    engine,
) -> None:  # type: ignore[no-untyped-def]
    """A release reads the window's held alerts, applies them, then marks the window released. A
    batch in between (a record stamped before the end by a receiver whose clock ran behind)
    held one more alert; once marked, the window was never due again and the alert was held, and
    paged nobody, for ever."""
    windows = MaintenanceStore(engine)
    await windows.add(WINDOW)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    straggler = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=59))
    assert await pipeline.process_alerts([straggler]) == []  # held
    await windows.mark_released(WINDOW.id, T0 + timedelta(hours=1))  # the race's outcome
    released = await pipeline.release_windows(T0 + timedelta(hours=1, seconds=10))
    assert [e.type for e in released] == [EventType.OPENED]
    assert released[0].occurred_at == WINDOW.ends_at
    assert await pipeline.release_windows(T0 + timedelta(hours=2)) == []


async def test_a_window_does_not_take_an_alert_out_of_an_incident_resolved_by_hand(engine) -> None:  # type: ignore[no-untyped-def]
    """Found by the model-based test (tests/model): an alert still firing in an incident an
    operator resolved by hand is re-sent during a window. It is a repeat, not a new firing: the
    window must not hold it (the incident would still count it firing), and its repeat after the
    window must not reopen the incident counting it twice."""
    pipeline = Pipeline(
        IncidentStore(engine), load_rules(None), LifecyclePolicy(quiet_period=timedelta(minutes=5))
    )
    before = T0 - timedelta(minutes=10)
    (opened, *_) = await pipeline.process_alerts([alert("CheckoutDown", service="checkout", at=before)])
    resolve = command(opened.incident_id, "resolve", at=before + timedelta(minutes=1))
    assert (await pipeline.process_command(resolve)).applied
    await MaintenanceStore(engine).add(WINDOW.model_copy(update={"ends_at": T0 + timedelta(minutes=5)}))
    during = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=1))
    after = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=6))
    assert await pipeline.process_alerts([during, after]) == []
    (incident,) = await pipeline.store.list_incidents()
    assert incident.state.value == "resolved"
    assert incident.alerts_firing == 1


def test_released_record_arrives_at_the_window_end() -> None:
    from models.incident import Classification
    from models.maintenance import suppressed_state
    from models.severity import Severity

    record = alert(service="checkout", at=T0 + timedelta(minutes=1))
    held = suppressed_state(record, Classification(severity=Severity.SEV2, rule="r"), None, "mw_1")
    again = released_record(held, T0 + timedelta(hours=1))
    assert again.status == "firing"
    assert again.received_at == T0 + timedelta(hours=1)
    assert again.fingerprint == record.fingerprint


def sevflow(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    env["SEVFLOW_DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_schedules_lists_and_ends_windows(tmp_path: Path) -> None:
    assert sevflow(tmp_path, "init-db").returncode == 0
    added = sevflow(
        tmp_path,
        "maintenance",
        "add",
        "-m",
        'service="checkout"',
        "--end",
        "+2h",
        "--comment",
        "db upgrade",
    )
    assert added.returncode == 0, added.stderr
    window_id = added.stdout.split(":")[0]
    assert window_id.startswith("mw_")
    listed = sevflow(tmp_path, "maintenance", "list")
    assert window_id in listed.stdout
    assert "active" in listed.stdout
    assert "db upgrade" in listed.stdout
    assert sevflow(tmp_path, "maintenance", "end", window_id).returncode == 0
    assert "no maintenance windows" in sevflow(tmp_path, "maintenance", "list").stdout
    assert window_id in sevflow(tmp_path, "maintenance", "list", "--all").stdout
    bad = sevflow(tmp_path, "maintenance", "add", "-m", "service", "--end", "+1h")
    assert bad.returncode == 2
    assert "not a matcher" in bad.stderr
    missing = sevflow(tmp_path, "maintenance", "end", "mw_nope")
    assert missing.returncode == 1
    assert "no window mw_nope" in missing.stderr


def test_cli_names_why_the_store_cannot_be_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from models.settings import Settings
    from sevflow.commands.maintenance import run as run_maintenance

    monkeypatch.setenv("SEVFLOW_DATABASE_URL", "postgresql://ops:secretpw@127.0.0.1:1/sevflow")
    status = run_maintenance(Settings(), argparse.Namespace(maintenance_action="list", all=False))
    assert status == 1
    err = capsys.readouterr().err
    # The driver's reason, not a hint to run init-db on a database that is not reachable at all.
    assert "cannot use the incident store: connection failed" in err
    assert "init-db" not in err
    assert "secretpw" not in err


async def test_a_held_alert_whose_resolution_waits_in_the_backlog_is_not_paged(engine) -> None:  # type: ignore[no-untyped-def]
    """The window ends while the held alert's resolution (received before the end) still waits
    on its partition: the release waits for record time to pass the end, then finds the alert
    resolved, and pages nobody; no incident is left open."""
    from models.alert import RecordPosition
    from streams.record_time import RecordTime

    await MaintenanceStore(engine).add(WINDOW)
    store = IncidentStore(engine)
    pipeline = Pipeline(store, load_rules(None), LifecyclePolicy())
    record_time = RecordTime(store, max_age=timedelta(seconds=30))
    firing = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=5))
    assert await pipeline.process_alerts([firing], [RecordPosition(0, 0)]) == []
    # The resolution, received at minute 50, waits at offset 1; the wall clock is past the end.
    now = T0 + timedelta(minutes=61)
    record_time.observe({0: 1}, now)
    mark = await record_time.watermark(now)
    assert mark == T0 + timedelta(minutes=5)
    assert mark is not None
    assert await pipeline.release_windows(mark) == []
    resolution = alert(
        "CheckoutDown", service="checkout", status="resolved", at=T0 + timedelta(minutes=50)
    )
    assert await pipeline.process_alerts([resolution], [RecordPosition(0, 1)]) == []
    record_time.observe({0: 0}, now + timedelta(seconds=10))
    mark = await record_time.watermark(now + timedelta(seconds=10))
    assert mark is not None
    assert await pipeline.release_windows(mark) == []
    assert await pipeline.store.list_incidents() == []


async def test_a_release_is_checked_again_and_keeps_the_alerts_position(engine) -> None:  # type: ignore[no-untyped-def]
    """Released twice (a crash between the release and its bookkeeping): the second finds the
    alert no longer held and changes nothing. The released record keeps the alert's offset: its
    resolution, later on the partition but stamped before the end by a receiver whose clock runs
    behind, still resolves the incident the release opened."""
    from models.alert import RecordPosition

    await MaintenanceStore(engine).add(WINDOW)
    pipeline = Pipeline(
        IncidentStore(engine), load_rules(None), LifecyclePolicy(quiet_period=timedelta(minutes=5))
    )
    firing = alert("CheckoutDown", service="checkout", at=T0 + timedelta(minutes=5))
    assert await pipeline.process_alerts([firing], [RecordPosition(0, 0)]) == []
    (opened,) = await pipeline.release_windows(T0 + timedelta(hours=1))
    assert opened.type is EventType.OPENED
    assert opened.occurred_at == WINDOW.ends_at
    async with MaintenanceStore(engine)._engine.begin() as conn:  # the crash: not marked
        from sqlalchemy import update

        from store.schema import maintenance_windows

        await conn.execute(update(maintenance_windows).values(released_at=None))
    assert await pipeline.release_windows(T0 + timedelta(hours=1)) == []
    behind = alert("CheckoutDown", service="checkout", status="resolved", at=T0 + timedelta(minutes=58))
    (resolved,) = await pipeline.process_alerts([behind], [RecordPosition(0, 1)])
    assert (resolved.type, resolved.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert resolved.incident.alerts_firing == 0


async def test_a_window_stored_with_a_matcher_that_no_longer_reads_holds_nothing(  # type: ignore[no-untyped-def]
    engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A look-ahead was a valid matcher while matchers were Python's ``re``; RE2 (Alertmanager's
    syntax) refuses it. Such a window, already in the store, must not stop the worker's batches:
    it holds nothing, is said once, and can be listed and ended."""
    with pytest.raises(ValidationError, match="bad regular expression"):
        WINDOW.model_validate(WINDOW.model_dump() | {"matchers": ('service=~"(?!search).*"',)})
    old_id = f"mw_old_{engine.dialect.name}"  # (said once a process: one id per back end)
    old = MaintenanceWindow.model_construct(
        **(WINDOW.model_dump() | {"id": old_id, "matchers": ('service=~"(?!search).*"',)})
    )
    windows = MaintenanceStore(engine)
    await windows.add(old)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    during = T0 + timedelta(minutes=10)
    with caplog.at_level("ERROR", logger="store.maintenance"):
        first = await pipeline.process_alerts([alert("CheckoutDown", service="checkout", at=during)])
        again = await pipeline.process_alerts([alert("PayDown", service="payments", at=during)])
    assert [e.type for e in first + again] == [EventType.OPENED, EventType.OPENED]  # not held
    said = [r.getMessage() for r in caplog.records if old_id in r.getMessage()]
    assert len(said) == 1
    assert "holds nothing" in said[0]
    assert "invalid perl operator: (?!" in said[0]
    (listed,) = await windows.listing()
    assert listed.unreadable() == ["bad regular expression '(?!search).*': invalid perl operator: (?!"]
    assert window_json(listed, during)["unreadable"] == listed.unreadable()
    assert "unreadable" not in window_json(WINDOW, during)
    ended = await windows.end(old_id, during)
    assert ended is not None
    assert ended[1] is True
