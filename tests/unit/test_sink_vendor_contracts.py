"""The vendor fakes enforce the contracts (../shared/contracts), and sevflow's clients classify
each real error shape: permanent 4xx, retryable 429 (with Retry-After) and 5xx."""

import asyncio
import os
import ssl
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from models.severity import Severity
from sinks.errors import DeliveryError
from sinks.pagerduty_client import PagerDutySender
from sinks.pagerduty_format import PagerDutyCall, pagerduty_calls
from sinks.slack_client import SlackError, SlackSender
from sinks.slack_format import SlackMessage
from sinks.statuspage_client import StatuspageClient
from sinks.statuspage_format import StatusChange
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import ROUTING_KEY, SLACK_TOKEN, SP_KEY, SP_PAGE
from testkit.fakes.http import Fault
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage

clock = fixtures.clock
fake_pagerduty = fixtures.fake_pagerduty
fake_slack = fixtures.fake_slack
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert

CHANGE = StatusChange(
    "create",
    "API errors",
    "investigating",
    "major",
    "We are investigating.",
    {"cmpapi000001": "partial_outage"},
)


async def test_pagerduty_fake_speaks_tls_and_validates(
    fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    assert fake_pagerduty.url.startswith("https://")
    sender = PagerDutySender(SecretStr(ROUTING_KEY), fake_pagerduty.url, timeout=5, ca_file=tls_cert[0])
    try:
        (call,) = pagerduty_calls(IncidentStory().fire()[0], paged=False, severities=frozenset(Severity))
        assert await sender.send(call) == call.dedup_key  # 202 + dedup_key
        assert (
            await sender.send(PagerDutyCall("resolve", "never-triggered")) == "never-triggered"
        )  # dropped, 202
        assert fake_pagerduty.alerts[0].status == "triggered"
        bad = PagerDutyCall("trigger", "k", summary="s", source="x", severity="fatal")
        with pytest.raises(DeliveryError, match=r"payload\.severity") as caught:
            await sender.send(bad)
        assert not caught.value.retryable
        fake_pagerduty.faults.fail_next(1, 429, retry_after=None, body=b"")
        with pytest.raises(DeliveryError, match="HTTP 429") as caught:
            await sender.send(call)  # the package's endless 429 retry is off: one attempt
        assert caught.value.retryable
        fake_pagerduty.faults.fail_next(1, 502)
        with pytest.raises(DeliveryError, match="HTTP 502"):
            await sender.send(call)
    finally:
        sender.close()
    # Without the test CA the certificate is refused: TLS is real.
    untrusting = PagerDutySender(SecretStr(ROUTING_KEY), fake_pagerduty.url, timeout=5)
    try:
        with pytest.raises(DeliveryError, match="transport error"):
            await untrusting.send(call)
    finally:
        untrusting.close()


def _sockets() -> set[str]:
    """The process's open socket descriptors, as /proc names them."""
    fds = Path("/proc/self/fd")
    names = set()
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:"):
            names.add(f"{fd.name}={target}")
    return names


async def test_pagerduty_sender_closed_under_a_call_keeps_its_socket_until_the_call_ends(
    fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    """A sink closed while a call waits for PagerDuty (a worker cancelled mid-trigger) must not
    close the socket that call's thread still reads: the next file opened took its number and the
    late read consumed the file (a CA file read next held "no certificate")."""
    sender = PagerDutySender(SecretStr(ROUTING_KEY), fake_pagerduty.url, timeout=5, ca_file=tls_cert[0])
    (call,) = pagerduty_calls(IncidentStory().fire()[0], paged=False, severities=frozenset(Severity))
    fake_pagerduty.faults.hold = threading.Event()
    task = asyncio.create_task(sender.send(call))
    try:
        assert await asyncio.to_thread(fake_pagerduty.faults.held.wait, 10)
        in_flight = _sockets()
        sender.close()
        assert _sockets() == in_flight
    finally:
        fake_pagerduty.faults.hold.set()
        fake_pagerduty.faults.hold = None
    assert await task == call.dedup_key
    assert fake_pagerduty.alerts[0].status == "triggered"
    closed = set()
    for _ in range(100):  # the client's socket closes as the thread returns
        closed = in_flight - _sockets()
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed
    with pytest.raises(DeliveryError, match="sender closed") as caught:
        await sender.send(call)
    assert caught.value.retryable


async def test_slack_interrupted_post_is_found_past_one_page_of_history(
    fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """A post's key is looked for through every page of the channel's history since its event
    (less ten minutes of clock skew), not only the newest 200 messages; nothing older is read."""
    fake_slack.clock = clock
    sender = SlackSender(SecretStr(SLACK_TOKEN), fake_slack.url, timeout=5)
    try:
        incidents = fake_slack.by_name("incidents")
        assert incidents is not None
        fake_slack.chatter("incidents", 5)
        clock.advance(3600)
        posted = await sender.post(incidents.id, SlackMessage("announcement"), "key-1")
        fake_slack.chatter("incidents", 450)
        found = await sender.find_message(incidents.id, "key-1", since=clock.now())
        assert found == posted
        pages = [a for m, a in fake_slack.calls if m == "conversations.history"]
        assert len(pages) == 3  # 200 + 200 + 51 messages newer than the bound
        assert await sender.find_message(incidents.id, "key-2", since=clock.now()) is None
        later = clock.now() + timedelta(minutes=11)
        assert await sender.find_message(incidents.id, "key-1", since=later) is None
    finally:
        await sender.close()


async def test_slack_fake_rules(fake_slack: FakeSlack) -> None:
    async with httpx.AsyncClient(base_url=fake_slack.url, timeout=5) as http:
        assert (
            await http.post("chat.postMessage", json={"channel": "incidents", "text": "x"})
        ).json() == {
            "ok": False,
            "error": "not_authed",
        }
        bad = await http.post(
            "chat.postMessage", headers={"Authorization": "Bearer xoxb-wrong"}, json={"text": "x"}
        )
        assert bad.json()["error"] == "invalid_auth"
    sender = SlackSender(SecretStr(SLACK_TOKEN), fake_slack.url, timeout=5)
    try:
        for name, code in [
            ("Has Caps", "invalid_name_specials"),
            ("x" * 81, "invalid_name_maxlength"),
            ("incidents", "name_taken"),
        ]:
            with pytest.raises(SlackError) as caught:
                await sender.create_channel(name)
            assert (caught.value.code, caught.value.retryable) == (code, False)
        with pytest.raises(SlackError) as caught:
            await sender.post("C999999999", SlackMessage("hi"), "k")
        assert caught.value.code == "channel_not_found"
        fake_slack.faults.fail_next(
            1,
            429,
            retry_after=7,
            body=b'{"ok":false,"error":"ratelimited"}',
            content_type="application/json",
        )
        with pytest.raises(SlackError) as caught:
            await sender.post("incidents", SlackMessage("hi"), "k")
        assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == (
            "ratelimited",
            True,
            7,
        )
        fake_slack.faults.fail_next(1, 503)
        with pytest.raises(SlackError) as caught:
            await sender.post("incidents", SlackMessage("hi"), "k")
        assert caught.value.retryable
        posted = await sender.post("incidents", SlackMessage("hi"), "the-key")
        assert posted["channel"] == fake_slack.by_name("incidents").id  # type: ignore[union-attr]
        assert await sender.find_message(posted["channel"], "the-key") == posted
    finally:
        await sender.close()


async def test_statuspage_fake_errors(fake_statuspage: FakeStatuspage) -> None:
    wrong_key = StatuspageClient(SecretStr("nope"), SP_PAGE, fake_statuspage.url, timeout=5)
    wrong_page = StatuspageClient(SecretStr(SP_KEY), "nopage", fake_statuspage.url, timeout=5)
    good = StatuspageClient(SecretStr(SP_KEY), SP_PAGE, fake_statuspage.url, timeout=5)
    bad_component = replace(CHANGE, components={"zzz": "partial_outage"})
    try:
        for client, change, expected in [
            (wrong_key, CHANGE, "HTTP 401: Could not authenticate"),
            (wrong_page, CHANGE, "HTTP 404: Page not found"),
            (good, bad_component, "HTTP 422: component zzz not found"),
        ]:
            with pytest.raises(DeliveryError) as caught:
                await client.create("inc_1", change)
            assert caught.value.reason == f"Statuspage create: {expected}"
            assert not caught.value.retryable
        fake_statuspage.faults.fail_next(
            1, 420, retry_after=3, body=b'{"message":"rate limited"}', content_type="application/json"
        )
        with pytest.raises(DeliveryError) as caught:
            await good.create("inc_1", CHANGE)
        assert (caught.value.retryable, caught.value.retry_after) == (True, 3)
        page_id = await good.create("inc_1", CHANGE)
        assert await good.find("inc_1") == page_id
        assert fake_statuspage.components["cmpapi000001"] == "partial_outage"
        with pytest.raises(DeliveryError, match="HTTP 404"):
            await good.update("doesnotexist", "inc_1", CHANGE)
    finally:
        for client in (wrong_key, wrong_page, good):
            await client.close()
    assert SP_KEY not in str(fake_statuspage.writes)


def test_fault_windows_follow_the_clock(clock: FakeClock) -> None:
    from testkit.fakes.http import Faults

    faults = Faults()
    faults.outage(clock, [(10.0, Fault(503)), (20.0, Fault(429, 5))])
    assert faults.take() == Fault(503)
    clock.advance(15)
    assert faults.take() == Fault(429, 5)
    clock.advance(10)
    assert faults.take() is None


async def test_fakes_refuse_what_is_over_the_vendors_limits(
    fake_pagerduty: FakePagerDuty,
    fake_slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> None:
    """Each fake answers an oversized call as its vendor does, for good (contracts §2.2, §3.3,
    §4.2): PagerDuty 400 "invalid event", Slack ``msg_too_long`` / ``invalid_blocks``,
    Statuspage 422 ``{"message": …}``."""
    event = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "critical"},
    }
    trust = ssl.create_default_context(cafile=str(tls_cert[0]))
    async with httpx.AsyncClient(base_url=fake_pagerduty.url, verify=trust) as http:
        big = {**event, "payload": {**event["payload"], "custom_details": {"x": "y" * 512_000}}}
        answer = await http.post("/v2/enqueue", json=big)
        assert answer.status_code == 400
        assert answer.json()["status"] == "invalid event"
        assert "512 KB" in answer.json()["errors"][0]
        long_summary = {**event, "payload": {**event["payload"], "summary": "s" * 1025}}
        assert (await http.post("/v2/enqueue", json=long_summary)).status_code == 400
        assert (await http.post("/v2/enqueue", json=event)).status_code == 202
    headers = {"Authorization": f"Bearer {SLACK_TOKEN}"}
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    button = {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "action_id": "a"}
    async with httpx.AsyncClient(base_url=fake_slack.url, headers=headers) as http:
        for args, code in [
            ({"text": "x" * 40_001}, "msg_too_long"),
            ({"text": "😀" * 20_001}, "msg_too_long"),  # 40,002 UTF-16 units
            ({"text": "x", "blocks": [section] * 51}, "invalid_blocks"),
            (
                {
                    "text": "x",
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
                },
                "invalid_blocks",
            ),
            (
                {
                    "text": "x",
                    "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
                },
                "invalid_blocks",
            ),
            ({"text": "x", "blocks": [{"type": "actions", "elements": [button]}]}, "invalid_blocks"),
            (
                {
                    "text": "x",
                    "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
                },
                "invalid_blocks",
            ),
        ]:
            answer = await http.post("chat.postMessage", json={"channel": "incidents", **args})
            assert answer.json() == {"ok": False, "error": code}, args
        posted = (await http.post("chat.postMessage", json={"channel": "incidents", "text": "x"})).json()
        assert posted["ok"]
        edit = {"channel": posted["channel"], "ts": posted["ts"], "text": "x" * 40_001}
        assert (await http.post("chat.update", json=edit)).json() == {
            "ok": False,
            "error": "msg_too_long",
        }
    client = StatuspageClient(SecretStr(SP_KEY), SP_PAGE, fake_statuspage.url, timeout=5)
    try:
        for change, message in [
            (StatusChange("create", "n", "investigating", "major", "b" * 25_001), "body is too long"),
            (StatusChange("create", "n" * 256, "investigating", "major", "b"), "name is too long"),
        ]:
            with pytest.raises(DeliveryError, match=f"HTTP 422: {message}") as caught:
                await client.create("inc_1", change)
            assert not caught.value.retryable
    finally:
        await client.close()
    assert fake_statuspage.incidents == {}
