"""The email sink's pure parts: who is emailed, the stable Message-ID, headers an alert cannot
forge, SMTP replies classified, the settings' TLS rule."""

import json
from datetime import timedelta

import aiosmtplib
import pytest
from pydantic import ValidationError

from models.events import IncidentEvent
from models.settings import Settings
from models.severity import Severity
from sinks.email_client import classify_smtp
from sinks.email_format import Thread, contact_email, message_id, recipients, reply_email
from testkit.fakes.events import T0, IncidentStory

SENDER = "sevflow@alerts.example.com"


def escalated(*targets: dict[str, str], title: str = "Disk full") -> IncidentEvent:
    story = IncidentStory(summary=title, severity=Severity.SEV1, security=True)
    story.fire()
    data = {"level": "security", "level_name": "security contact", "targets": json.dumps(targets)}
    (event,) = story.escalate(data, T0 + timedelta(seconds=1), "security incident")
    return event


def test_only_plain_email_addresses_are_recipients_each_once() -> None:
    event = escalated(
        {"kind": "email", "to": "security@example.com"},
        {"kind": "slack", "to": "#security-incidents"},
        {"kind": "email", "to": "security@example.com"},
        {"kind": "email", "to": "legal@example.com, evil@example.net"},
        {"kind": "email", "to": "Legal <legal@example.com>"},
        {"kind": "phone", "to": "+1 555 0100"},
        {"kind": "email", "to": " legal@example.com "},
    )
    assert recipients(event) == ["security@example.com", "legal@example.com"]


def test_the_message_id_is_the_same_for_every_attempt_and_differs_per_event() -> None:
    story = IncidentStory()
    opened, *_ = story.fire()
    (ack,) = story.ack()
    assert message_id(opened, SENDER) == message_id(opened.model_copy(), SENDER)
    assert message_id(opened, SENDER) != message_id(ack, SENDER)
    assert message_id(opened, SENDER).endswith("@alerts.example.com>")
    first = contact_email(opened, ["a@example.com"], sender=SENDER, channel=None, thread=None)
    again = contact_email(opened, ["a@example.com"], sender=SENDER, channel=None, thread=None)
    assert first.as_bytes() == again.as_bytes()  # a retry sends the same bytes


def test_an_alerts_words_cannot_add_a_header_or_a_recipient() -> None:
    event = escalated(
        {"kind": "email", "to": "security@example.com"},
        title="Disk full\r\nBcc: evil@example.net\r\nX-Injected: yes",
    )
    message = contact_email(event, recipients(event), sender=SENDER, channel=None, thread=None)
    raw = message.as_bytes().decode()
    head = raw.split("\r\n\r\n", 1)[0] if "\r\n\r\n" in raw else raw.split("\n\n", 1)[0]
    assert "Bcc" not in message
    assert "X-Injected" not in message
    assert "\nBcc:" not in head
    assert "\nX-Injected:" not in head
    assert message["To"] == "security@example.com"


@pytest.mark.parametrize("breaks", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x9f"])
def test_every_line_break_python_knows_is_taken_out_of_the_subject(breaks: str) -> None:
    """The email policy refuses a header that ``str.splitlines`` would split: U+2028 in an
    alert's summary raised ValueError, which stopped the email sink at that event."""
    event = escalated({"kind": "email", "to": "security@example.com"}, title=f"Disk{breaks}full")
    message = contact_email(event, recipients(event), sender=SENDER, channel=None, thread=None)
    assert message["Subject"].startswith("[SEV1] Security incident: Disk full (")
    thread = Thread(root=str(message["Message-ID"]), subject=f"Disk{breaks}full", recipients=("a@b.c",))
    (ack,) = IncidentStory(summary="x").fire()[:1]
    assert reply_email(ack, thread, sender=SENDER, channel=None)["Subject"] == "Re: Disk full"
    assert message.as_bytes()


def test_a_reply_threads_on_the_opening_and_goes_to_everyone_emailed() -> None:
    story = IncidentStory()
    story.fire()
    (resolved,) = story.resolve(root_cause="bad deploy", fix="rolled back")
    thread = Thread("<root@example.com>", "[SEV2] Incident: x", ("a@example.com", "b@example.com"))
    reply = reply_email(resolved, thread, sender=SENDER, channel="incident-20260115-x")
    assert reply["To"] == "a@example.com, b@example.com"
    assert reply["Subject"] == "Re: [SEV2] Incident: x"
    assert reply["In-Reply-To"] == reply["References"] == "<root@example.com>"
    body = reply.get_content()
    assert "Root cause: bad deploy" in body
    assert "Fix: rolled back" in body
    assert "Incident channel: #incident-20260115-x" in body


def test_smtp_replies_and_failures_are_classified() -> None:
    assert classify_smtp(aiosmtplib.SMTPDataError(451, "try later")).retryable
    assert not classify_smtp(aiosmtplib.SMTPDataError(554, "refused")).retryable
    assert not classify_smtp(aiosmtplib.SMTPAuthenticationError(535, "bad")).retryable
    assert classify_smtp(aiosmtplib.SMTPServerDisconnected("gone")).retryable
    assert classify_smtp(aiosmtplib.SMTPConnectError("refused")).retryable
    greylisted = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(450, "greylisted", "a@example.com")]
    )
    assert classify_smtp(greylisted).retryable
    unknown = aiosmtplib.SMTPRecipientsRefused(
        [
            aiosmtplib.SMTPRecipientRefused(450, "greylisted", "a@example.com"),
            aiosmtplib.SMTPRecipientRefused(550, "no such user", "b@example.com"),
        ]
    )
    assert not classify_smtp(unknown).retryable
    no_tls = classify_smtp(aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."))
    assert not no_tls.retryable
    assert "plain text" in no_tls.reason


def test_smtp_settings_refuse_plain_text_unless_told() -> None:
    assert Settings(smtp_host="mail.example.com").smtp_port_or_default() == 587
    assert Settings(smtp_host="m", smtp_tls_mode="implicit").smtp_port_or_default() == 465
    with pytest.raises(ValidationError, match="SEVFLOW_SMTP_ALLOW_INSECURE"):
        Settings(smtp_host="m", smtp_tls_mode="none")
    assert (
        Settings(smtp_host="m", smtp_tls_mode="none", smtp_allow_insecure=True).smtp_port_or_default()
        == 25
    )
    with pytest.raises(ValidationError, match="together"):
        Settings(smtp_host="m", smtp_username="u")
    assert not Settings().email_configured()
    assert "hunter2-smtp" not in repr(Settings(smtp_username="u", smtp_password="hunter2-smtp"))


def test_contacts_told_with_a_level_read_why_they_are_told_not_the_levels_reason() -> None:
    story = IncidentStory(summary="Customer data exfiltration", severity=Severity.SEV1, security=True)
    story.fire()
    data = {
        "level": "1",
        "level_name": "primary on-call",
        "targets": json.dumps(
            [{"kind": "pagerduty", "to": "primary"}, {"kind": "email", "to": "legal@example.com"}]
        ),
        "contacts_reason": "data-breach incident: notifying the data breach contact",
    }
    (event,) = story.escalate(data, T0 + timedelta(seconds=1), "notifying primary on-call")
    message = contact_email(event, recipients(event), sender=SENDER, channel=None, thread=None)
    text = message.get_content()
    assert "Why you are told: data-breach incident: notifying the data breach contact" in text
    assert "primary on-call" not in text


def test_a_long_or_broken_title_never_takes_the_id_off_the_subject_nor_writes_lines() -> None:
    """The Subject was cut at 200 characters with the id in it: a long title took the id off.
    An impact's line breaks wrote lines of their own among the facts (a forged "Status:")."""
    s = IncidentStory(severity=Severity.SEV1, security=True, summary="Ünïcödé 日本語 " * 40,
                      impact="Logins fail\nStatus: Resolved")  # fmt: skip
    (opened,) = s.fire()
    message = contact_email(opened, ["security@example.com"], sender=SENDER, channel=None, thread=None)
    subject = str(message["Subject"])
    assert subject.startswith("[SEV1] Security incident: Ünïcödé 日本語")
    assert subject.endswith(f"… ({opened.incident_id})")
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert "Impact: Logins fail Status: Resolved" in body.splitlines()
    assert not any(line.startswith("Status: Resolved") for line in body.splitlines())
