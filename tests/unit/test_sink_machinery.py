"""The delivery machinery as pure parts: retry policy, circuit breaker, storm detector, pacing,
record decoding, settings."""

import asyncio
import itertools
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.events import EVENT_SCHEMA_VERSION, EventType
from models.settings import Settings
from models.severity import Severity
from sinks.breaker import TRIAL_POLL, CircuitBreaker
from sinks.errors import RETRY_AFTER_MAX, DeliveryError, classify_status, parse_retry_after
from sinks.metrics import SinkCollector
from sinks.offsets import PendingOffsets
from sinks.pacing import ChannelPacer
from sinks.records import REPLAY_HEADER, SHARED_DECODES, decode, decode_shared
from sinks.retry import RetryPolicy, backoff, call_with_retry
from sinks.storm import StormDetector
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory

POLICY = RetryPolicy(initial=1.0, maximum=60.0, deadline=600.0)


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    error = DeliveryError(True, "HTTP 503")
    assert backoff(POLICY, 1, error, 0.0) == 0.5
    assert backoff(POLICY, 1, error, 0.999) == pytest.approx(1.0, abs=0.01)
    assert backoff(POLICY, 4, error, 1.0) == 8.0
    assert backoff(POLICY, 30, error, 1.0) == 60.0  # capped
    assert backoff(POLICY, 1, DeliveryError(True, "429", retry_after=30), 0.5) == 30


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (420, True),
        (500, True),
        (503, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
def test_status_classification(status: int, retryable: bool) -> None:
    assert classify_status(status, "x").retryable is retryable


def test_retry_after_parsing() -> None:
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 30  # RFC 9110's date form
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0  # in the past
    assert parse_retry_after("-5") == 0
    assert parse_retry_after(None) is None
    for unreadable in ("", "soon", "nan", "inf", "-inf", "Wed, 99 Oct 2015 07:28:00 GMT"):
        assert parse_retry_after(unreadable, now) is None, unreadable


@pytest.mark.parametrize("value", ["86400", "1e308", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_vendors_retry_after_pauses_a_sink_for_minutes_at_most(value: str) -> None:
    """A hostile or misconfigured ``Retry-After`` must not hold every page of the sink for a day,
    or for ever (``inf`` read as a float did: each later call failed "circuit open past the retry
    deadline" at once)."""
    assert parse_retry_after(value) == RETRY_AFTER_MAX == 300
    breaker = CircuitBreaker(failures_to_open=5, cooldown=30)
    breaker.throttle(0.0, parse_retry_after(value) or 0.0)
    assert breaker.acquire(0.0) == 300
    assert breaker.acquire(300.0) == 0


async def test_retries_until_success_on_the_clock() -> None:
    clock = FakeClock()
    answers: list[Exception | None] = [DeliveryError(True, "503"), DeliveryError(True, "429", 30), None]

    async def call() -> str:
        answer = answers.pop(0)
        if answer:
            raise answer
        return "ok"

    breaker = CircuitBreaker(5, 30)
    result = await call_with_retry(
        call, policy=POLICY, clock=clock, breaker=breaker, what="t", rng=random.Random(1)
    )
    assert result == "ok"
    assert clock.slept[1] == 30  # Retry-After honoured
    assert not breaker.is_open


async def test_permanent_error_is_not_retried() -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise DeliveryError(False, "HTTP 400")

    with pytest.raises(DeliveryError, match="400"):
        await call_with_retry(
            call, policy=POLICY, clock=FakeClock(), breaker=CircuitBreaker(5, 30), what="t"
        )
    assert calls == 1


async def test_deadline_gives_up_with_the_reason() -> None:
    clock = FakeClock()

    async def call() -> None:
        raise DeliveryError(True, "HTTP 503")

    with pytest.raises(DeliveryError, match=r"HTTP 503 \(gave up after") as caught:
        await call_with_retry(call, policy=POLICY, clock=clock, breaker=CircuitBreaker(5, 30), what="t")
    assert caught.value.retryable
    assert clock.monotonic() <= POLICY.deadline


async def test_breaker_stops_hammering() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def call() -> str:
        calls.append(clock.monotonic())
        if clock.monotonic() < 300:
            raise DeliveryError(True, "HTTP 503")
        return "ok"

    breaker = CircuitBreaker(failures_to_open=3, cooldown=60)
    policy = RetryPolicy(initial=0.1, maximum=1.0, deadline=3600)
    assert await call_with_retry(call, policy=policy, clock=clock, breaker=breaker, what="t") == "ok"
    # Without the breaker ~600 calls (one per ≤1s); with it: 3 fast ones, then one per cooldown.
    assert len(calls) < 15
    assert not breaker.is_open


def test_breaker_states() -> None:
    breaker = CircuitBreaker(2, 10)
    breaker.record_failure(0)
    assert breaker.acquire(0) == 0
    breaker.record_failure(1)
    assert breaker.acquire(1) == 10
    assert breaker.acquire(11) == 0  # half-open: this caller is the trial…
    assert breaker.acquire(11) == TRIAL_POLL  # …and the next one waits for its outcome
    breaker.record_failure(11)
    assert breaker.acquire(11) == 10  # trial failed: open again
    assert breaker.acquire(21) == 0
    assert breaker.acquire(30) == TRIAL_POLL  # a trial that never reports is given up…
    assert breaker.acquire(31) == 0  # …a cooldown after it left
    breaker.record_success()
    assert not breaker.is_open
    assert breaker.acquire(31) == breaker.acquire(31) == 0


async def test_half_open_breaker_lets_one_concurrent_call_through() -> None:
    """Incidents are delivered concurrently: after the cooldown one trial call goes to the
    recovering API, the others wait for its outcome instead of all calling at once."""
    clock = FakeClock()
    breaker = CircuitBreaker(failures_to_open=1, cooldown=60)
    breaker.record_failure(clock.monotonic())
    clock.advance(60)
    release = asyncio.Event()
    calls: list[str] = []

    def caller(name: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            calls.append(name)
            if name == "trial":
                await release.wait()
            return name

        return call

    policy = RetryPolicy(initial=1, maximum=1, deadline=3600)
    trial = asyncio.create_task(
        call_with_retry(caller("trial"), policy=policy, clock=clock, breaker=breaker, what="t")
    )
    await asyncio.sleep(0)
    others = [
        asyncio.create_task(
            call_with_retry(caller(f"other{i}"), policy=policy, clock=clock, breaker=breaker, what="t")
        )
        for i in range(3)
    ]
    for _ in range(10):
        await asyncio.sleep(0)
    assert calls == ["trial"]
    release.set()
    assert await trial == "trial"
    assert await asyncio.gather(*others) == ["other0", "other1", "other2"]
    assert calls[0] == "trial"
    assert sorted(calls[1:]) == ["other0", "other1", "other2"]
    assert not breaker.is_open


async def test_a_permanent_answer_closes_the_breaker() -> None:
    """A 400 is an answer: the API is up, whatever was wrong with the request."""
    clock = FakeClock()
    breaker = CircuitBreaker(failures_to_open=2, cooldown=60)
    breaker.record_failure(0)

    async def call() -> str:
        raise DeliveryError(False, "HTTP 400")

    with pytest.raises(DeliveryError, match="HTTP 400"):
        await call_with_retry(call, policy=POLICY, clock=clock, breaker=breaker, what="t")
    assert breaker.consecutive_failures == 0
    assert not breaker.is_open


def test_one_failing_incident_never_opens_the_breaker() -> None:
    """The breaker counts failing incidents: one incident refused again and again (a 5xx for its
    dedup_key alone) is one failure, and opening on its retries held every other incident."""
    breaker = CircuitBreaker(failures_to_open=3, cooldown=30)
    for second in range(100):
        breaker.record_failure(second, "inc_held")
    assert not breaker.is_open
    assert breaker.acquire(100) == 0
    breaker.record_failure(101, "inc_b")
    breaker.record_failure(102, "inc_c")  # three incidents failing in a row: the vendor is down
    assert breaker.is_open
    assert breaker.acquire(103) == 29
    assert breaker.acquire(132) == 0  # half-open: the held incident is the trial…
    breaker.record_failure(132, "inc_held")
    assert breaker.acquire(132) == 0  # …and failing as before, it lets another incident try
    breaker.record_success()
    assert not breaker.is_open


async def test_a_throttled_answer_holds_every_call_of_the_sink() -> None:
    """A 429 with Retry-After is the vendor asking the whole sink to slow down: another
    incident's call waits for it too, while a 5xx holds only its own incident."""
    clock = FakeClock()
    breaker = CircuitBreaker(failures_to_open=5, cooldown=30)
    answers: list[Exception | None] = [classify_status(429, "t", 30), None]

    async def throttled() -> str:
        answer = answers.pop(0)
        if answer:
            raise answer
        return "ok"

    policy = RetryPolicy(initial=1, maximum=1, deadline=3600)
    assert (
        await call_with_retry(throttled, policy=policy, clock=clock, breaker=breaker, what="t", key="a")
        == "ok"
    )
    assert clock.monotonic() >= 30
    assert breaker.acquire(10) == 20  # until the Retry-After ran out, another incident waited too
    assert breaker.acquire(30) == 0
    breaker.record_failure(clock.monotonic(), "b")  # a 5xx: no pause for the others
    assert breaker.acquire(clock.monotonic()) == 0
    assert not classify_status(503, "t", 30).throttled


def test_offsets_commit_up_to_the_oldest_unfinished_record() -> None:
    offsets: PendingOffsets[int] = PendingOffsets()
    for offset in range(5):
        offsets.polled(0, offset)
    offsets.polled(1, 7)
    for offset in (0, 2, 3, 4):
        offsets.finished(0, offset)  # 1 is held
    offsets.finished(1, 7)
    assert offsets.committable() == {0: 1, 1: 8}
    assert len(offsets) == 1
    offsets.committed(offsets.to_commit())
    assert offsets.to_commit() == {}  # nothing moved: nothing to commit again
    offsets.polled(0, 5)
    offsets.finished(0, 5)
    assert offsets.to_commit() == {}  # still held at 1
    offsets.finished(0, 1)
    assert offsets.to_commit() == {0: 6}


def test_storm_detector() -> None:
    detector = StormDetector(threshold=3)
    stories = [IncidentStory(name=f"Disk{i}", severity=Severity.SEV3, group=f"g{i}") for i in range(5)]
    opened = [s.fire(at=T0 + timedelta(seconds=i))[0] for i, s in enumerate(stories)]
    detector.observe(opened[:3])
    detector.observe(opened[:3])  # a redelivered batch counts once
    assert not detector.digests(opened[2])
    detector.observe(opened[3:])
    assert detector.digests(opened[4])
    assert detector.storm_id == "20260115T143004"
    sev1 = IncidentStory(severity=Severity.SEV1, group="sev1").fire(at=T0 + timedelta(seconds=5))[0]
    detector.observe([sev1])
    assert not detector.digests(sev1)  # SEV1 always goes out on its own
    assert not detector.active(T0 + timedelta(minutes=5))  # the window moved on


def test_storm_detector_keeps_two_windows_of_openings() -> None:
    """Ten minutes of openings, one a second: only the last two windows' are kept (each batch
    forgets what fell behind, without a pass over all of them), and a redelivered opening of
    those is still counted once."""
    detector = StormDetector(threshold=1_000)
    stories = [IncidentStory(name=f"Api{i}", severity=Severity.SEV3, group=f"a{i}") for i in range(600)]
    opened = [s.fire(at=T0 + timedelta(seconds=i))[0] for i, s in enumerate(stories)]
    for start in range(0, len(opened), 10):
        detector.observe(opened[start : start + 10])
    kept = {e.incident_id for e in opened[-121:]}  # 2 minutes back from the last, inclusive
    assert set(detector._seen) == kept  # (the memory this bounds)
    assert len(detector._opened) == len(kept)
    detector.observe(opened[-5:])
    assert len(detector._opened) == len(kept)


async def test_pacer_serves_sev1_first_and_spaces_posts() -> None:
    clock = FakeClock()
    pacer = ChannelPacer(clock, 1.0)
    order: list[tuple[str, float]] = []
    gate = asyncio.Event()

    async def post(name: str, rank: int, channel: str = "C1") -> None:
        async with pacer.slot(channel, rank):
            if name == "first":
                await gate.wait()
            order.append((name, clock.monotonic()))

    first = asyncio.create_task(post("first", 3))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(post(n, r)) for n, r in [("sev3", 3), ("sev4", 4), ("sev1", 1)]]
    other = asyncio.create_task(post("other-channel", 4, "C2"))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *waiting, other)
    names = [n for n, _ in order]
    assert names.index("other-channel") < names.index("sev1")
    assert [n for n in names if n != "other-channel"] == ["first", "sev1", "sev3", "sev4"]
    times = [t for n, t in order if n != "other-channel"]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))


async def test_pacer_passes_the_channel_on_when_its_next_owner_is_cancelled() -> None:
    """The channel is handed to a waiter that is cancelled before it runs (its batch was given
    up): the turn goes to the next waiter instead of the channel staying busy for good."""
    clock = FakeClock()
    pacer = ChannelPacer(clock, 1.0)
    release = asyncio.Event()
    posted: list[str] = []
    tasks: dict[str, asyncio.Task[None]] = {}

    async def post(name: str) -> None:
        async with pacer.slot("C1", 3):
            if name == "first":
                await release.wait()
            posted.append(name)
        if name == "first":
            tasks["doomed"].cancel()  # in the same step as the hand-over: it has not run yet

    tasks["first"] = asyncio.create_task(post("first"))
    await asyncio.sleep(0)
    tasks["doomed"] = asyncio.create_task(post("doomed"))
    tasks["later"] = asyncio.create_task(post("later"))
    await asyncio.sleep(0)
    release.set()
    await tasks["first"]
    with pytest.raises(asyncio.CancelledError):
        await tasks["doomed"]
    await asyncio.wait_for(tasks["later"], timeout=5)
    assert posted == ["first", "later"]


def test_decode_skips_unknown_types_and_flags_poison() -> None:
    (opened,) = IncidentStory().fire()
    assert decode(opened.to_bytes()).event == opened
    future = json.loads(opened.to_bytes())
    future["type"] = "postmortem_published"
    assert decode(json.dumps(future).encode()).event is None
    assert decode(json.dumps(future).encode()).poison is None
    assert decode(b"{not json").poison == "invalid event: not JSON"
    assert decode(b"[" * 100_000).poison == "invalid event: JSON nested too deeply"
    broken = json.loads(opened.to_bytes())
    del broken["incident"]["title"]
    assert "incident.title" in (decode(json.dumps(broken).encode()).poison or "")
    assert decode(opened.to_bytes(), [(REPLAY_HEADER, b"slack")]).replay_for == "slack"
    for foreign in [b"\xff\xfe", None]:
        replay = decode(opened.to_bytes(), [(REPLAY_HEADER, foreign)])  # type: ignore[list-item]
        assert replay.event == opened
        assert replay.replay_for not in {"slack", "pagerduty", "statuspage", "email", None}
    assert opened.type is EventType.OPENED


def test_decode_refuses_a_newer_schema_version() -> None:
    """A newer ``schema_version`` means a consumer must behave differently: read as this version,
    the event was delivered as if nothing had changed."""
    (opened,) = IncidentStory().fire()
    newer = json.loads(opened.to_bytes())
    newer["schema_version"] = EVENT_SCHEMA_VERSION + 1
    decoded = decode(json.dumps(newer).encode())
    assert decoded.event is None
    assert decoded.poison is not None
    assert "newer event schema_version 2" in decoded.poison
    assert "upgrade sevflow sinks" in decoded.poison
    assert (decoded.incident_id, decoded.event_id) == (opened.incident_id, str(opened.event_id))
    current = {**newer, "schema_version": EVENT_SCHEMA_VERSION}
    assert decode(json.dumps(current).encode()).event == opened
    assert decode(json.dumps({**newer, "type": "postmortem_published"}).encode()) == decode(b"{}")


def test_the_sinks_of_a_process_decode_a_record_once() -> None:
    """Each sink's consumer hands it bytes of its own; the second sink gets the Decoded the first
    one made for the same value and headers, and a record that differs in either is decoded
    anew. A header list that cannot be kept is decoded, not refused."""
    (opened,) = IncidentStory(name="SharedDecode").fire()
    first, second = opened.to_bytes(), bytearray(opened.to_bytes())
    assert first is not bytes(second)
    shared = decode_shared(first)
    assert shared.event == opened
    assert decode_shared(bytes(second)) is shared
    replayed = decode_shared(bytes(second), ((REPLAY_HEADER, b"slack"),))
    assert replayed is not shared
    assert replayed.replay_for == "slack"
    assert replayed.event == opened
    listed = decode_shared(first, [[REPLAY_HEADER, b"email"]])  # type: ignore[list-item]
    assert listed.replay_for == "email"
    assert decode_shared(b"{not json") == decode(b"{not json")
    for i in range(SHARED_DECODES):  # older records leave: a bounded memory
        decode_shared(b'{"n": %d}' % i)
    assert decode_shared(opened.to_bytes()) is not shared
    assert decode_shared(opened.to_bytes()) == shared


def test_sink_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_PAGERDUTY_ROUTING_KEY", "r" * 32)
    monkeypatch.setenv("SEVFLOW_SLACK_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SEVFLOW_STATUSPAGE_API_KEY", "sp-secret")
    monkeypatch.setenv("SEVFLOW_PAGERDUTY_SEVERITIES", "SEV1-SEV2,SEV4")
    monkeypatch.setenv("SEVFLOW_PAGERDUTY_REGION", "EU")
    monkeypatch.setenv("SEVFLOW_STATUSPAGE_COMPONENTS", "api=8kbf7d35c070, web=abc")
    settings = Settings()
    assert settings.pagerduty_severities == [Severity.SEV1, Severity.SEV2, Severity.SEV4]
    assert settings.pagerduty_url() == "https://events.eu.pagerduty.com"
    assert settings.statuspage_components == {"api": "8kbf7d35c070", "web": "abc"}
    assert settings.slack_severities == list(Severity)
    assert not settings.statuspage_configured()
    shown = repr(settings) + str(settings.model_dump())
    assert "very-secret" not in shown
    assert "sp-secret" not in shown
    assert "r" * 32 not in shown
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"


def test_sink_settings_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_PAGERDUTY_BASE_URL", "http://events.example.com")
    with pytest.raises(ValidationError, match="https"):
        Settings()
    monkeypatch.delenv("SEVFLOW_PAGERDUTY_BASE_URL")
    monkeypatch.setenv("SEVFLOW_SLACK_SEVERITIES", "SEV3-SEV1")
    with pytest.raises(ValidationError, match="backwards"):
        Settings()


def test_a_pagerduty_ca_file_without_a_certificate_is_refused_at_start(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from sinks.pagerduty_client import PagerDutySender

    empty = tmp_path / "ca.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"SEVFLOW_PAGERDUTY_CA_FILE: .*: no PEM certificate in it"):
        PagerDutySender(SecretStr("R" * 32), "https://127.0.0.1:1", timeout=1.0, ca_file=empty)


def test_a_stopped_sink_is_shown_as_stopped_and_the_others_not() -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    collector = SinkCollector([Named("pagerduty"), Named("slack")], "dlq")  # type: ignore[list-item]
    collector.stopped.add("slack")
    (stopped,) = [m for m in collector.collect() if m.name == "sevflow_sink_stopped"]
    assert {s.labels["sink"]: s.value for s in stopped.samples} == {"pagerduty": 0.0, "slack": 1.0}
