"""The operator console over a real SQLite store and the API's own command routes; the commands
topic is the recording boundary (tests.builders.CommandRecorder)."""

import asyncio
import base64
import contextlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from analytics.figures import ResponseTargets
from models.access import ApiToken, Scope
from models.events import IncidentState
from models.incident import Command, Incident, LifecyclePolicy
from models.severity import Severity
from models.web_links import web_url
from receiver.access import Credentials
from receiver.app import create_app
from receiver.callbacks import callback_routes
from receiver.console import ConsoleConfig, console_mount
from receiver.console.charts import Bar, bar_chart
from receiver.console.deliveries import summarize
from receiver.console.identity import ProxyTrust
from receiver.console.links import LinkSettings, incident_links
from receiver.console.session import COOKIE_NAME, SessionSigner
from receiver.console.targets import format_duration, format_remaining, response_clock
from receiver.incident_api import incident_routes
from store.db import async_engine
from store.deliveries import DeliveryLog
from store.delivery_steps import DeliveryStep
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, CommandRecorder, alert
from tests.unit.test_access import Publisher
from tests.unit.test_escalation_cli import incidents_in_every_state

READ = "read-secret-token"
WRITE = "write-secret-token"
NOW = T0 + timedelta(minutes=5)
HOSTILE = "<script>alert(1)</script>"
JS_URL = "javascript:alert(1)"


@dataclass
class Console:
    client: TestClient
    ids: dict[str, str]
    commands: CommandRecorder


def _credentials() -> Credentials:
    return Credentials(
        [
            ApiToken(name="viewer", scopes=frozenset({Scope.READ}), secret=SecretStr(READ)),
            ApiToken(
                name="oncall", scopes=frozenset({Scope.READ, Scope.WRITE}), secret=SecretStr(WRITE)
            ),
        ]
    )


async def _populate(url: str) -> dict[str, str]:
    ids = await incidents_in_every_state(url)
    engine = async_engine(url)
    try:
        pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
        opened = await pipeline.process_alerts(
            [alert("Hostile", severity="warning", service="web", team=HOSTILE)]
        )
        ids["hostile"] = opened[0].incident_id
        linked = alert("HostileLinks", severity="info", annotations={"runbook_url": JS_URL})
        opened = await pipeline.process_alerts(
            [linked.model_copy(update={"generator_url": JS_URL, "external_url": "ftp://am"})]
        )
        ids["hostile_links"] = opened[0].incident_id
    finally:
        await engine.dispose()
    return ids


@contextmanager
def _console(
    tmp_path: Path,
    proxy: ProxyTrust | None = None,
    peer: str = "testclient",
    clock: Callable[[], datetime] = lambda: NOW,
    links: LinkSettings | None = None,
    credentials: Credentials | None = None,
    in_receiver: bool = False,
) -> Iterator[Console]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ids = asyncio.run(_populate(url))
    engine = async_engine(url)
    recorder = CommandRecorder()
    api = [r for r in callback_routes(recorder) if r.path.startswith("/api/")]
    config = ConsoleConfig(
        engine=engine,
        credentials=credentials or _credentials(),
        signer=SessionSigner(b"k" * 32, timedelta(hours=12)),
        clock=clock,
        targets=ResponseTargets(),
        proxy=proxy,
        links=links or LinkSettings(),
    )
    app = (
        create_app(
            publisher=Publisher(),  # type: ignore[arg-type]
            auth=config.credentials,
            now=clock,
            console=lambda routes, instrument: console_mount(config, routes, instrument),
        )
        if in_receiver  # as the receiver serves it: request ids, logs, JSON errors
        else Starlette(routes=[console_mount(config, incident_routes(engine, commands=api))])
    )
    with TestClient(app, base_url="https://testserver", client=(peer, 5000)) as client:
        yield Console(client, ids, recorder)
        client.portal.call(engine.dispose)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    with _console(tmp_path) as built:
        yield built


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def _sign_in(client: TestClient, token: str) -> None:
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"token": token, "csrf": _csrf(page.text), "next": "/ui/incidents"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def console_alone(engine: AsyncEngine, now: datetime, proxy: ProxyTrust | None = None) -> Starlette:
    """The console alone (the playbook's targets, this module's tokens) on ``engine``, at ``now``."""
    config = ConsoleConfig(
        engine=engine,
        credentials=_credentials(),
        signer=SessionSigner(b"k" * 32, timedelta(hours=12)),
        clock=lambda: now,
        targets=ResponseTargets(),
        proxy=proxy,
    )
    return Starlette(routes=[console_mount(config, incident_routes(engine))])


@contextmanager
def signed_in(engine: AsyncEngine, now: datetime) -> Iterator[TestClient]:
    """:func:`console_alone`, signed in with the read token; the engine is disposed of at the
    end."""
    app = console_alone(engine, now)
    with TestClient(app, base_url="https://testserver") as client:
        _sign_in(client, READ)
        yield client
        client.portal.call(engine.dispose)


def test_pages_need_a_sign_in_and_the_cookie_is_locked_down(console: Console) -> None:
    client = console.client
    before = client.get("/ui/incidents?severity=SEV1", follow_redirects=False)
    assert before.status_code == 303
    assert before.headers["location"] == "/ui/login?next=%2Fui%2Fincidents%3Fseverity%3DSEV1"
    page = client.get("/ui/login")
    refused = client.post("/ui/login", data={"token": "wrong", "csrf": _csrf(page.text)})
    assert refused.status_code == 401
    assert "not valid" in refused.text
    signed = client.post(
        "/ui/login",
        data={"token": READ, "csrf": _csrf(page.text), "next": "/ui/incidents?severity=SEV1"},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/ui/incidents?severity=SEV1"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/ui"):
        assert flag.lower() in cookie.lower()
    assert READ not in cookie  # the token travels signed and encoded, not as typed
    assert client.get("/ui/incidents").status_code == 200
    # A next= outside the console is not followed.
    page = client.get("/ui/login")
    away = client.post(
        "/ui/login",
        data={"token": READ, "csrf": _csrf(page.text), "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/ui/incidents"
    out = client.post("/ui/logout", data={"csrf": _csrf(client.get("/ui/incidents").text)})
    assert out.url.path == "/ui/login"
    assert client.get("/ui/incidents", follow_redirects=False).status_code == 303


def test_sign_in_attempts_are_rate_limited_per_address_with_retry_after(tmp_path: Path) -> None:
    now = [NOW]
    with _console(tmp_path, clock=lambda: now[0]) as console:
        client = console.client
        csrf = _csrf(client.get("/ui/login").text)
        for _ in range(10):  # the burst: each attempt is checked
            assert client.post("/ui/login", data={"token": "guess", "csrf": csrf}).status_code == 401
        limited = client.post("/ui/login", data={"token": WRITE, "csrf": csrf})
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "6"  # 10 a minute: one every 6 s
        assert 'data-code="rate_limited"' in limited.text
        assert "too many sign-in attempts" in limited.text
        as_json = client.post(
            "/ui/login", data={"token": WRITE, "csrf": csrf}, headers={"accept": "application/json"}
        )
        assert as_json.status_code == 429
        assert as_json.json()["error"] == "rate_limited"
        with TestClient(client.app, base_url="https://testserver", client=("10.9.9.9", 1)) as other:
            page = other.get("/ui/login")
            other_try = other.post("/ui/login", data={"token": "guess", "csrf": _csrf(page.text)})
            assert other_try.status_code == 401  # another address has its own attempts
        now[0] = NOW + timedelta(seconds=6)
        signed = client.post("/ui/login", data={"token": WRITE, "csrf": csrf}, follow_redirects=False)
        assert signed.status_code == 303


def _decodings(text: str) -> str:
    """``text`` and what each of its dot-separated parts reads as in base64 (either alphabet)."""
    read = [text]
    for part in text.split("."):
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            with contextlib.suppress(ValueError):
                read.append(decode(part + "=" * (-len(part) % 4)).decode("utf-8", "replace"))
    return " ".join(read)


def test_the_cookie_carries_no_token_and_a_copy_signs_nobody_in_after_sign_out(
    console: Console,
) -> None:
    """The cookie carried the API token in base64: whoever saw it (a proxy's log, a HAR file)
    held a bearer token for the whole API, and signing out only asked the browser to forget it."""
    client = console.client
    _sign_in(client, WRITE)
    cookie = client.cookies[COOKIE_NAME]
    assert WRITE not in _decodings(cookie)
    csrf = _csrf(client.get("/ui/incidents").text)  # (a HAR file holds the page too)
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert out.url.path == "/ui/login"
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, cookie, path="/ui")  # the copy, replayed
    assert client.get("/ui/incidents", follow_redirects=False).status_code == 303
    refused = client.post(
        f"/ui/incidents/{console.ids['triggered']}/ack",
        data={"csrf": csrf},
        headers={"accept": "application/json"},
    )
    assert refused.status_code == 403
    assert console.commands.commands == []
    _sign_in(client, WRITE)  # signing in again starts a new session, which works
    assert client.get("/ui/incidents").status_code == 200


def test_a_session_of_a_token_no_longer_configured_signs_nobody_in(tmp_path: Path) -> None:
    with _console(tmp_path) as console:
        _sign_in(console.client, WRITE)
        cookie = console.client.cookies[COOKIE_NAME]
    with _console(tmp_path / "rotated", credentials=Credentials([])) as rotated:
        rotated.client.cookies.set(COOKIE_NAME, cookie, path="/ui")
        assert rotated.client.get("/ui/incidents", follow_redirects=False).status_code == 303


def test_the_consoles_refusals_are_json_with_a_request_id_as_the_receivers_are(tmp_path: Path) -> None:
    """The console's own refusals were Starlette's plain text, with no request id or log line."""
    with _console(tmp_path, in_receiver=True) as console:
        client = console.client
        bare = client.get("/ui", follow_redirects=False)  # as a person types it: no slash
        assert (bare.status_code, bare.headers["location"]) == (303, "/ui/")
        assert client.get("/ui/incidents/", follow_redirects=False).status_code == 404
        missing = client.get("/ui/nonexistent")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        assert "/ui/nonexistent" in missing.json()["message"]
        wrong = client.delete("/ui/incidents")
        assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
        assert "GET" in wrong.json()["message"]
        unreadable = client.post(
            "/ui/login", content=b"x", headers={"content-type": "multipart/form-data"}
        )
        assert unreadable.status_code == 415  # the console's own page, a form being its input
        assert "x-www-form-urlencoded" in unreadable.text
        assert re.fullmatch(r"[0-9a-f]{32}", unreadable.headers["x-request-id"])
        page = client.get("/ui/login", headers={"x-request-id": "console-check-1"})
        assert page.status_code == 200
        assert page.headers["x-request-id"] == "console-check-1"
        _sign_in(client, READ)
        assert client.get("/ui/incidents").status_code == 200


def test_a_tampered_cookie_signs_nobody_in(console: Console) -> None:
    _sign_in(console.client, READ)
    value = console.client.cookies[COOKIE_NAME]
    console.client.cookies.clear()
    console.client.cookies.set(COOKIE_NAME, value[:-1] + ("0" if value[-1] != "0" else "1"), path="/ui")
    assert console.client.get("/ui/incidents", follow_redirects=False).status_code == 303


def test_list_is_open_first_by_severity_with_response_targets_and_url_filters(console: Console) -> None:
    _sign_in(console.client, READ)
    page = console.client.get("/ui/incidents").text
    order = re.findall(r'data-incident="([^"]+)"', page)
    assert order.index(console.ids["triggered"]) < order.index(console.ids["resolved"])
    assert order.index(console.ids["hostile"]) < order.index(console.ids["resolved"])
    # SEV1 opened at T0, 5 minutes ago, unanswered: 10 of its 15 minutes left.
    row = page.split(f'data-incident="{console.ids["triggered"]}"')[1].split("</tr>")[0]
    assert "&lt; 15 min" in row
    assert "10m left" in row
    sev1 = console.client.get("/ui/incidents?severity=SEV1&state=triggered").text
    assert re.findall(r'data-incident="([^"]+)"', sev1) == [console.ids["triggered"]]
    assert 'value="SEV1" selected' in sev1
    web = console.client.get("/ui/incidents?service=web").text
    assert re.findall(r'data-incident="([^"]+)"', web) == [console.ids["hostile"]]
    fragment = console.client.get("/ui/incidents?severity=SEV1&fragment=1").text
    assert "<html" not in fragment
    assert console.ids["triggered"] in fragment
    bad = console.client.get("/ui/incidents?severity=SEV9", headers={"accept": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_parameter"
    assert "severity" in bad.json()["message"]


def test_response_clock_counts_down_marks_breaches_and_judges_responses() -> None:
    incident = Incident(
        id="inc_1", group_key="g", title="t", slug="t", severity=Severity.SEV1, opened_at=T0
    )
    targets = ResponseTargets()
    pending = response_clock(incident, targets, T0 + timedelta(minutes=5))
    assert (pending.status, pending.remaining, pending.target_label) == (
        "pending",
        timedelta(minutes=10),
        "< 15 min",
    )
    assert format_remaining(timedelta(minutes=10)) == "10m left"
    late = response_clock(incident, targets, T0 + timedelta(minutes=20))
    assert (late.status, format_remaining(late.remaining or timedelta(0))) == ("breached", "5m over")
    acked = incident.model_copy(update={"acknowledged_at": T0 + timedelta(minutes=20)})
    assert response_clock(acked, targets, T0 + timedelta(hours=1)).status == "breached"
    quick = incident.model_copy(update={"acknowledged_at": T0 + timedelta(minutes=3)})
    assert response_clock(quick, targets, T0 + timedelta(hours=1)).status == "met"
    # A reopening starts a new episode with its own target (and clears the acknowledgement).
    reopened = quick.model_copy(
        update={"reopened_at": T0 + timedelta(minutes=50), "acknowledged_at": None}
    )
    assert response_clock(reopened, targets, T0 + timedelta(hours=1)).status == "pending"
    # An acknowledgement of this episode stamped a minute before the reopening by a host whose
    # clock runs behind the receiver's is this episode's answer, as the engine and the report
    # take it: met, not left out and judged unanswered.
    skewed = reopened.model_copy(update={"acknowledged_at": T0 + timedelta(minutes=49)})
    assert response_clock(skewed, targets, T0 + timedelta(hours=2)).status == "met"


def test_an_answered_episode_is_judged_by_the_severity_in_effect_at_its_answer() -> None:
    """A SEV3 acknowledged after 20 minutes and raised to SEV1 afterwards met its target, as
    the escalation engine and the report judge it; the console judged it by SEV1's 15 minutes."""
    raised = Incident(
        id="inc_1",
        group_key="g",
        title="t",
        slug="t",
        severity=Severity.SEV1,
        opened_at=T0,
        state=IncidentState.ACKNOWLEDGED,
        acknowledged_at=T0 + timedelta(minutes=20),
    )
    targets = ResponseTargets()
    clock = response_clock(raised, targets, T0 + timedelta(hours=1), Severity.SEV3)
    assert (clock.status, clock.target_label) == ("met", "< 2 hours")
    assert response_clock(raised, targets, T0 + timedelta(hours=1)).status == "breached"


def test_labels_and_titles_are_escaped(console: Console) -> None:
    _sign_in(console.client, READ)
    page = console.client.get(f"/ui/incidents/{console.ids['hostile']}")
    assert page.status_code == 200
    assert HOSTILE not in page.text
    assert "team=&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_urls_from_alerts_are_links_only_when_http(console: Console) -> None:
    """A runbook, generator or Alertmanager URL that is not http(s) is shown as text, never as an
    href (the Content-Security-Policy would block a click on ``javascript:``; no link is safer)."""
    _sign_in(console.client, READ)
    page = console.client.get(f"/ui/incidents/{console.ids['hostile_links']}").text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs  # the page's own links are there
    assert not [h for h in hrefs if not h.startswith(("/", "http://", "https://"))], hrefs
    assert page.count(JS_URL) == 3  # runbook, generator (twice: links and the alert) as text
    assert "Alertmanager: <code>ftp://am</code>" in page
    plain = console.client.get(f"/ui/incidents/{console.ids['hostile']}").text
    assert '<a href="http://prometheus.test/graph">Alert source (generator)</a>' in plain


def test_read_token_sees_no_buttons_and_cannot_act(console: Console) -> None:
    _sign_in(console.client, READ)
    incident = console.ids["triggered"]
    page = console.client.get(f"/ui/incidents/{incident}").text
    assert 'id="acknowledge"' not in page
    assert 'id="resolve"' not in page
    assert "(read only)" in page
    # The server checks the scope again: a forged form is refused, naming the scope.
    refused = console.client.post(f"/ui/incidents/{incident}/ack", data={"csrf": _csrf(page)})
    assert refused.status_code == 403
    assert "write scope" in refused.text
    assert console.commands.commands == []


def test_the_buttons_name_the_episode_the_page_showed(console: Console) -> None:
    """The console's buttons sent no episode: an Acknowledge pressed on a page loaded before the
    incident reopened acknowledged the new episode, where the API and Slack refuse it (409)."""
    _sign_in(console.client, WRITE)
    incident = console.ids["triggered"]
    page = console.client.get(f"/ui/incidents/{incident}").text
    assert page.count('name="episode" value="0"') == 3  # acknowledge, escalate, resolve
    ack = console.client.post(
        f"/ui/incidents/{incident}/ack",
        data={"csrf": _csrf(page), "episode": "0"},
        follow_redirects=False,
    )
    assert ack.status_code == 303
    assert console.commands.commands[-1].episode == 0
    stale = console.client.post(
        f"/ui/incidents/{incident}/ack",
        data={"csrf": _csrf(page), "episode": "1"},
        headers={"accept": "application/json"},
    )
    assert (stale.status_code, stale.json()["error"]) == (409, "episode_not_reached")
    bad = console.client.post(
        f"/ui/incidents/{incident}/ack",
        data={"csrf": _csrf(page), "episode": "-1"},
        headers={"accept": "application/json"},
    )
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_body")
    assert len(console.commands.commands) == 1


def test_actions_take_the_api_route_with_the_signed_in_person_as_actor(console: Console) -> None:
    _sign_in(console.client, WRITE)
    incident = console.ids["triggered"]
    page = console.client.get(f"/ui/incidents/{incident}").text
    assert 'id="acknowledge"' in page
    assert 'id="resolve"' in page
    key = re.search(r'name="idempotency" value="(ack-[0-9a-f]+)"', page)
    assert key
    done = console.client.post(
        f"/ui/incidents/{incident}/ack",
        data={"csrf": _csrf(page), "idempotency": key.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/ui/incidents/{incident}?done=acknowledge")
    resolved = console.client.post(
        f"/ui/incidents/{incident}/resolve",
        data={"csrf": _csrf(page), "root_cause": "bad deploy", "fix": "rolled back"},
        follow_redirects=False,
    )
    assert resolved.status_code == 303
    ack, resolve = console.commands.commands
    assert (ack.action, ack.incident_id, ack.actor.name, ack.actor.via) == (
        "acknowledge",
        incident,
        "oncall",
        "api",
    )
    assert ack.command_id.startswith("api:")  # the API's idempotency key from the form
    assert (resolve.root_cause, resolve.fix) == ("bad deploy", "rolled back")
    # The API's own look-up answers: acknowledging a resolved incident is refused, nothing queued.
    refused = console.client.post(
        f"/ui/incidents/{console.ids['resolved']}/ack", data={"csrf": _csrf(page)}
    )
    assert refused.status_code == 409
    assert "incident_resolved" in refused.text
    assert len(console.commands.commands) == 2


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_post_without_the_session_csrf_token_is_403_csrf(console: Console, accept: str) -> None:
    _sign_in(console.client, WRITE)
    incident = console.ids["triggered"]
    for form in ({}, {"csrf": "0" * 64}):
        refused = console.client.post(
            f"/ui/incidents/{incident}/ack", data=form, headers={"accept": accept}
        )
        assert refused.status_code == 403
        if accept == "application/json":
            assert refused.json()["error"] == "csrf"
        else:
            assert 'data-code="csrf"' in refused.text
            assert "CSRF token" in refused.text
    assert console.commands.commands == []


def test_postmortem_downloads_as_markdown(console: Console) -> None:
    _sign_in(console.client, READ)
    incident = console.ids["resolved"]
    draft = console.client.get(f"/ui/incidents/{incident}/postmortem.md")
    assert draft.status_code == 200
    assert draft.headers["content-type"].startswith("text/markdown")
    assert f'filename="postmortem-{incident}.md"' in draft.headers["content-disposition"]
    assert draft.text.startswith("#")


def test_analytics_draws_svg_charts(console: Console) -> None:
    _sign_in(console.client, READ)
    page = console.client.get("/ui/analytics?days=30").text
    assert page.count("<svg") == 3
    assert "Mean time to acknowledge per SEV" in page


@pytest.mark.parametrize("days", ["9" * 5_000, "0", "-5", "3661", "²", "abc"])
def test_analytics_takes_any_days_and_falls_back_to_30(console: Console, days: str) -> None:
    """A period it cannot use shows the last 30 days: 5,000 digits were a 500 (``int`` refuses
    over 4,300)."""
    _sign_in(console.client, READ)
    page = console.client.get("/ui/analytics", params={"days": days})
    assert page.status_code == 200
    assert page.text.count("<svg") == 3


def test_analytics_durations_read_as_minutes_and_hours_not_timedeltas(console: Console) -> None:
    _sign_in(console.client, READ)
    page = console.client.get("/ui/analytics?days=30").text
    figures = page[page.index('id="figures"') :]
    assert not re.search(r"\d:\d\d:\d\d", figures), figures
    assert "1 min / 1 min" in figures  # acknowledged and resolved a minute after opening
    assert ">1 min<" in page  # the bars' labels too


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(seconds=7.338668), "7 s"),
        (timedelta(minutes=12, seconds=59), "12 min"),
        (timedelta(hours=1, minutes=5), "1 h 05 min"),
        (timedelta(days=2, hours=4, minutes=3), "2 d 4 h"),
        (timedelta(0), "0 s"),
    ],
)
def test_durations_are_formatted_for_people(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


def test_chart_labels_are_escaped() -> None:
    svg = bar_chart("t<", [Bar(HOSTILE, 3.0, "3 <min>")])
    assert HOSTILE not in svg
    assert "&lt;script&gt;" in svg
    assert "3 &lt;min&gt;" in svg


def _proxy() -> ProxyTrust:
    return ProxyTrust(
        "X-Forwarded-User", [ip_network("10.0.0.5/32")], frozenset({Scope.READ, Scope.WRITE})
    )


def test_the_proxy_user_acts_when_the_request_comes_from_the_proxy(tmp_path: Path) -> None:
    with _console(tmp_path, _proxy(), peer="10.0.0.5") as console:
        _act_as_proxy_user(console)


def _act_as_proxy_user(console: Console) -> None:
    headers = {"x-forwarded-user": "alice@example.com"}
    page = console.client.get(f"/ui/incidents/{console.ids['triggered']}", headers=headers)
    assert page.status_code == 200
    assert "alice@example.com" in page.text
    console.client.post(
        f"/ui/incidents/{console.ids['triggered']}/ack", data={"csrf": _csrf(page.text)}, headers=headers
    )
    assert [c.actor.name for c in console.commands.commands] == ["alice@example.com"]


def test_the_proxy_header_is_ignored_from_other_addresses(tmp_path: Path) -> None:
    with _console(tmp_path, _proxy(), peer="10.0.0.9") as console:
        response = console.client.get(
            "/ui/incidents", headers={"x-forwarded-user": "alice@example.com"}, follow_redirects=False
        )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login")


async def _log_deliveries(url: str, incident_id: str) -> None:
    engine = async_engine(url)
    try:
        log = DeliveryLog(engine)
        await log.begin("pagerduty", "ev-1", "trigger", incident_id, T0)
        await log.confirm("pagerduty", ["ev-1"], "trigger", incident_id, T0 + timedelta(seconds=2))
        await log.begin("slack", "ev-1", "channel", incident_id, T0)
        await log.note("slack", "ev-1", "channel", {"name": HOSTILE})
    finally:
        await engine.dispose()


def test_deliveries_per_sink_show_sent_unconfirmed_and_each_step(tmp_path: Path) -> None:
    with _console(tmp_path) as console:
        incident = console.ids["triggered"]
        asyncio.run(_log_deliveries(f"sqlite:///{tmp_path / 'store.db'}", incident))
        _sign_in(console.client, READ)
        page = console.client.get(f"/ui/incidents/{incident}?fragment=1").text
    rows = dict(
        re.findall(r'<tr data-sink="(\w+)" class="[^"]*"><td>\w+</td><td class="state">([^<]+)', page)
    )
    assert rows == {
        "pagerduty": "sent",
        "slack": "retrying",  # begun at T0, unconfirmed five minutes later
        "statuspage": "nothing sent",
        "email": "nothing sent",
    }
    slack = page.split('data-sink="slack"')[1].split('data-sink="statuspage"')[0]
    assert '<td class="unconfirmed">1 (1 retrying or interrupted)</td>' in slack
    assert "<code>channel</code> · pending" in slack
    assert HOSTILE not in page  # the notes a sink wrote are escaped
    pagerduty = page.split('data-sink="pagerduty"')[1].split('data-sink="slack"')[0]
    assert '<td class="sent">1</td>' in pagerduty
    assert "confirmed 2026-11-27 12:00:02Z" in pagerduty


def test_dead_letters_mark_their_sink() -> None:
    step = DeliveryStep("slack", "ev-1", "announce", "pending", {}, T0, None)
    letter = {"sink": "slack", "event_id": "ev-1", "reason": "channel_not_found", "retryable": False}
    views = {v.sink: v for v in summarize([step], T0 + timedelta(seconds=5), [letter])}
    assert views["slack"].state == "dead-lettered"
    assert views["slack"].dead_letters is not None
    assert views["slack"].dead_letters[0].reason == "channel_not_found"
    assert views["pagerduty"].dead_letters == ()
    assert views["pagerduty"].state == "nothing sent"
    unread = {v.sink: v for v in summarize([step], T0 + timedelta(seconds=5))}
    assert unread["slack"].state == "in flight"  # five seconds: still the call in flight
    assert unread["slack"].dead_letters is None


async def _log_references(url: str, incident_id: str) -> None:
    engine = async_engine(url)
    try:
        log = DeliveryLog(engine)
        refs = {"channel_id": "C0123", "channel_name": f"incident-20261127-{HOSTILE}"}
        await log.put_refs("slack", incident_id, refs, T0)
        await log.put_refs("statuspage", incident_id, {"page_incident_id": "p0q9"}, T0)
        await log.begin("pagerduty", "ev-1", "trigger", incident_id, T0)
        await log.confirm("pagerduty", ["ev-1"], "trigger", incident_id, T0)
    finally:
        await engine.dispose()


def test_incident_page_links_the_slack_channel_pagerduty_and_the_status_page(tmp_path: Path) -> None:
    links = LinkSettings(
        slack_workspace_url="https://acme.slack.com/",
        pagerduty_subdomain="acme",
        statuspage_page_id="pg1",
    )
    with _console(tmp_path, links=links) as console:
        incident = console.ids["triggered"]
        asyncio.run(_log_references(f"sqlite:///{tmp_path / 'store.db'}", incident))
        _sign_in(console.client, READ)
        page = console.client.get(f"/ui/incidents/{incident}").text
    found = dict(re.findall(r'<li data-link="(\w+)"><a href="([^"]+)"', page))
    assert found == {
        "slack": "https://acme.slack.com/archives/C0123",
        "pagerduty": "https://acme.pagerduty.com/incidents",
        "statuspage": "https://manage.statuspage.io/pages/pg1/incidents/p0q9",
    }
    assert f"dedup key {incident}" in page
    assert HOSTILE not in page  # the channel name is escaped
    assert "&lt;script&gt;" in page


def test_links_are_http_only_and_need_their_settings() -> None:
    assert web_url("javascript:alert(1)") is None
    assert web_url("https:///no-host") is None
    assert web_url("data:text/html,x") is None
    assert web_url("http://status.example.com/") == "http://status.example.com/"
    refs = {"slack": {"channel_id": "C1", "channel_name": "incident-x"}}
    bare = incident_links("inc_1", refs, {"pagerduty": 1, "statuspage": 1}, LinkSettings())
    assert [(x.kind, x.text, x.url) for x in bare] == [("slack", "Slack #incident-x", None)]
    hostile = LinkSettings(slack_workspace_url="javascript:alert(1)", status_page_url="ftp://x")
    assert [x.url for x in incident_links("inc_1", refs, {"statuspage": 1}, hostile)] == [None]
    built_in = LinkSettings(status_page_url="https://status.example.com")
    assert [x.url for x in incident_links("inc_1", {}, {"statuspage": 1}, built_in)] == [
        "https://status.example.com"
    ]


async def _apply(url: str, commands: list[Command]) -> None:
    engine = async_engine(url)
    try:
        pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
        for command in commands:
            await pipeline.process_command(command)
    finally:
        await engine.dispose()


def test_a_note_from_the_console_takes_the_api_path_and_shows_on_the_timeline(tmp_path: Path) -> None:
    with _console(tmp_path) as console:
        _sign_in(console.client, WRITE)
        incident = console.ids["resolved"]  # a resolved incident takes notes too
        page = console.client.get(f"/ui/incidents/{incident}").text
        key = re.search(r'name="idempotency" value="(note-[0-9a-f]+)"', page)
        assert key
        done = console.client.post(
            f"/ui/incidents/{incident}/notes",
            data={"csrf": _csrf(page), "idempotency": key.group(1), "text": f"rolled back {HOSTILE}"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert "done=note" in done.headers["location"]
        (note,) = console.commands.commands
        assert (note.action, note.actor.name, note.text) == ("note", "oncall", f"rolled back {HOSTILE}")
        asyncio.run(_apply(f"sqlite:///{tmp_path / 'store.db'}", [note, note]))
        live = console.client.get(f"/ui/incidents/{incident}?fragment=1").text
    assert live.count('data-type="note_added"') == 1  # applied once
    assert HOSTILE not in live
    assert "rolled back &lt;script&gt;" in live


def test_a_read_token_has_no_note_form(console: Console) -> None:
    _sign_in(console.client, READ)
    page = console.client.get(f"/ui/incidents/{console.ids['triggered']}").text
    assert 'id="note-form"' not in page
    refused = console.client.post(
        f"/ui/incidents/{console.ids['triggered']}/notes", data={"csrf": _csrf(page), "text": "x"}
    )
    assert refused.status_code == 403
    assert console.commands.commands == []


def test_the_maintenance_page_names_a_window_that_holds_nothing() -> None:
    """A window stored with a matcher that no longer reads (models.maintenance.stored_window):
    the admin API's ``unreadable`` is shown beside its matchers; other windows show nothing."""
    from receiver.console.base import _environment

    window = {
        "id": "mw_old",
        "matchers": ['service=~"(?!search).*"'],
        "starts_at": "2026-12-07T00:00:00Z",
        "ends_at": "2026-12-07T02:00:00Z",
        "state": "active",
        "comment": "",
        "created_by": None,
    }
    unreadable = ["bad regular expression '(?!search).*': invalid perl operator: (?!"]
    listing = {"windows": [window | {"unreadable": unreadable}, window | {"id": "mw_new"}]}
    page = (
        _environment()
        .get_template("maintenance.html")
        .render(prefix="/ui", user=None, csrf="c", flash=None, listing=listing)
    )
    assert page.count("Holds nothing") == 1
    assert "invalid perl operator: (?!" in page
