"""The email sink against a real SMTP server on loopback (aiosmtpd, testkit/fakes/smtp.py), with
the delivery log on SQLite and PostgreSQL (the ``engine`` fixture), fed records directly.

The server speaks STARTTLS with a self-signed certificate made for the test (openssl), which the
sink trusts through SEVFLOW_SMTP_CA_FILE, and requires AUTH; retries run on a fake clock.
"""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import IncidentEvent
from models.settings import Settings
from models.severity import Severity
from sinks.base import Sink
from store.deliveries import DeliveryLog
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import records, sink_named, sink_settings, worker_for
from testkit.fakes.smtp import PASSWORD, USERNAME, FakeSmtp

clock = fixtures.clock
tls_cert = fixtures.tls_cert

SECURITY = "security@optimal-build.com"
LEGAL = "legal@optimal-build.com"
SENDER = "sevflow@alerts.optimal-build.com"


def contact(level: str, *targets: dict[str, str]) -> dict[str, str]:
    """An ``escalated`` event's data as models.escalation writes it for a contact."""
    return {
        "level": level,
        "level_name": f"{level} contact",
        "targets": json.dumps(list(targets)),
        "targets_text": ", ".join(t["to"] for t in targets),
    }


SECURITY_CONTACT = contact(
    "security",
    {"kind": "email", "to": SECURITY, "label": "Security"},
    {"kind": "slack", "to": "#security-incidents", "label": "Security"},
)
BREACH_CONTACT = contact("data_breach", {"kind": "email", "to": LEGAL, "label": "Legal"})


def breach_story() -> tuple[IncidentStory, list[IncidentEvent]]:
    """A SEV1 data breach: security told, then legal, then acknowledged and resolved."""
    story = IncidentStory(
        name="CustomerDataExfiltration", severity=Severity.SEV1, security=True, data_breach=True
    )
    events = story.fire()
    events += story.escalate(
        SECURITY_CONTACT, T0 + timedelta(seconds=1), "security incident: the security contact"
    )
    events += story.escalate(
        BREACH_CONTACT, T0 + timedelta(seconds=2), "data-breach incident: the data breach contact"
    )
    events += story.ack()
    events += story.resolve(root_cause="Leaked API token", fix="Token revoked and rotated")
    return story, events


@pytest.fixture
def smtp(tls_cert: tuple[Path, Path]) -> Iterator[FakeSmtp]:
    server = FakeSmtp(tls_cert, auth=True).start()
    yield server
    server.close()


def email_settings(server: FakeSmtp, cert: tuple[Path, Path] | None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_from": SENDER,
        "smtp_ca_file": cert[0] if cert else None,
    }
    if cert is not None:
        values.update(smtp_username=USERNAME, smtp_password=PASSWORD)
    return sink_settings(**values, **extra)


async def deliver(
    sink: Sink, clock: FakeClock, events: list[IncidentEvent], times: int = 1
) -> list[Any]:
    worker, dead = worker_for(sink, clock)
    try:
        for _ in range(times):
            await worker.process(records(events))
    finally:
        await sink.close()
    return dead.letters


async def test_contacts_are_emailed_once_and_later_changes_reply_in_the_thread(
    engine: AsyncEngine, smtp: FakeSmtp, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    sink = sink_named(email_settings(smtp, tls_cert), engine, clock, "email")
    story, events = breach_story()
    dead = await deliver(sink, clock, events, times=2)  # redelivered: the log answers, no email

    assert dead == []
    assert all(r.tls for r in smtp.received)  # STARTTLS, the self-signed certificate trusted
    opening, legal, ack, resolved = smtp.received
    incident = story.incident
    assert incident is not None
    subject = f"[SEV1] Data breach: API Error Rate Spike ({incident.id})"
    assert (opening.sender, opening.recipients) == (SENDER, [SECURITY])
    assert opening["Subject"] == subject
    assert opening.message["In-Reply-To"] is None  # the opening starts the thread
    root = opening["Message-ID"]
    assert root.startswith(f"<sevflow.{incident.id}.")
    assert root.endswith("@alerts.optimal-build.com>")
    body = opening.message.get_payload(decode=True).decode()
    assert "Severity: SEV1" in body
    assert f"Details: sevflow incidents show {incident.id}" in body
    assert "Incident channel: not open yet" in body

    # Legal, told later, joins the thread; the replies go to everyone emailed so far.
    assert legal.recipients == [LEGAL]
    assert ack.recipients == resolved.recipients == [SECURITY, LEGAL]
    for reply in (legal, ack, resolved):
        assert reply["Subject"] == f"Re: {subject}"
        assert reply["In-Reply-To"] == reply["References"] == root
    assert len({m["Message-ID"] for m in smtp.received}) == 4
    assert "Acknowledged by alice (via slack)." in ack.message.get_payload(decode=True).decode()
    text = resolved.message.get_payload(decode=True).decode()
    assert "Root cause: Leaked API token" in text
    assert "Fix: Token revoked and rotated" in text


async def test_the_slack_channel_is_named_when_the_slack_sink_opened_it(
    engine: AsyncEngine, smtp: FakeSmtp, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    story, events = breach_story()
    assert story.incident is not None
    await DeliveryLog(engine).put_refs(
        "slack", story.incident.id, {"channel_name": "incident-20260115-exfil"}, clock.now()
    )
    sink = sink_named(email_settings(smtp, tls_cert), engine, clock, "email")
    await deliver(sink, clock, events[:2])
    body = smtp.received[0].message.get_payload(decode=True).decode()
    assert "Incident channel: #incident-20260115-exfil (private" in body


async def test_a_4xx_reply_is_retried_until_the_server_accepts(
    engine: AsyncEngine, smtp: FakeSmtp, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    smtp.faults.extend(["451", "451"])
    sink = sink_named(email_settings(smtp, tls_cert), engine, clock, "email")
    _, events = breach_story()
    dead = await deliver(sink, clock, events[:2])
    assert dead == []
    assert smtp.attempts == 3
    assert [m.recipients for m in smtp.received] == [[SECURITY]]  # one email in the end
    assert len(clock.slept) == 2  # backed off twice (on the fake clock)


async def test_a_5xx_reply_is_dead_lettered_with_its_reason_and_not_retried(
    engine: AsyncEngine, smtp: FakeSmtp, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    smtp.faults.append("550")
    sink = sink_named(email_settings(smtp, tls_cert), engine, clock, "email")
    _, events = breach_story()
    dead = await deliver(sink, clock, events[:2])
    assert smtp.attempts == 1
    assert smtp.received == []
    (letter,) = dead
    assert letter.sink == "email"
    assert not letter.retryable
    assert "SMTP 550" in letter.reason


async def test_a_connection_dropped_after_data_is_retried_and_the_copy_shares_its_message_id(
    engine: AsyncEngine, smtp: FakeSmtp, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """The server kept the DATA but its 250 never arrived: the sink cannot know it was taken,
    so it sends again (at least once). The copy is the same message with the same Message-ID:
    a duplicate anyone can recognise, never a second, different email."""
    smtp.faults.append("drop")
    sink = sink_named(email_settings(smtp, tls_cert), engine, clock, "email")
    _, events = breach_story()
    dead = await deliver(sink, clock, events[:2])
    assert dead == []
    first, second = smtp.received
    assert first["Message-ID"] == second["Message-ID"]
    assert first.message.as_bytes() == second.message.as_bytes()
    assert len(clock.slept) == 1
    # Delivered once as far as the log is concerned: a redelivery sends nothing more.
    await deliver(sink_named(email_settings(smtp, tls_cert), engine, clock, "email"), clock, events[:2])
    assert len(smtp.received) == 2


async def test_a_server_without_starttls_gets_nothing_in_plain_text(
    engine: AsyncEngine, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    plain = FakeSmtp().start()
    try:
        sink = sink_named(email_settings(plain, None), engine, clock, "email")
        _, events = breach_story()
        dead = await deliver(sink, clock, events[:2])
    finally:
        plain.close()
    assert plain.attempts == 0
    (letter,) = dead
    assert not letter.retryable
    assert "plain text" in letter.reason


async def test_plain_text_smtp_only_with_the_insecure_flag(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    plain = FakeSmtp().start()
    try:
        with pytest.raises(ValidationError, match="SEVFLOW_SMTP_ALLOW_INSECURE"):
            email_settings(plain, None, smtp_tls_mode="none")
        settings = email_settings(plain, None, smtp_tls_mode="none", smtp_allow_insecure=True)
        sink = sink_named(settings, engine, clock, "email")
        _, events = breach_story()
        assert await deliver(sink, clock, events[:2]) == []
    finally:
        plain.close()
    (received,) = plain.received
    assert not received.tls


async def test_an_unknown_certificate_is_refused(
    engine: AsyncEngine, smtp: FakeSmtp, clock: FakeClock
) -> None:
    """Without SEVFLOW_SMTP_CA_FILE the self-signed certificate is not trusted: nothing sent."""
    settings = email_settings(smtp, None, smtp_username=USERNAME, smtp_password=PASSWORD)
    sink = sink_named(settings, engine, clock, "email")
    _, events = breach_story()
    (letter,) = await deliver(sink, clock, events[:2])
    assert smtp.received == []
    assert not letter.retryable
    assert "TLS" in letter.reason
