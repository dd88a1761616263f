"""A real SMTP server on loopback (aiosmtpd) that keeps what it received, with faults on demand.

aiosmtpd speaks the protocol itself (EHLO, STARTTLS, AUTH, the dot-stuffed DATA), so a test sees
what a mail server would: envelope recipients, the message's headers, a 4xx or 5xx reply, a
connection dropped after the DATA arrived. Faults are queued per DATA command:

    "451"   answer ``451 4.3.0 Try again later`` (transient: RFC 5321 §4.2.1); nothing kept
    "550"   answer ``550 5.1.1 Mailbox unavailable`` (permanent); nothing kept
    "drop"  keep the message, then close the connection before answering (the client never
            learns the server has it)
"""

import email.policy
import ssl
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from testkit.local import free_port

__all__ = ["FakeSmtp", "Received"]

USERNAME = "sevflow"
PASSWORD = "smtp-test-password"


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: Message
    tls: bool

    def __getitem__(self, header: str) -> str:
        return str(self.message[header])


class _Handler:
    def __init__(self, server: "FakeSmtp") -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        fault = self._server.faults.popleft() if self._server.faults else None
        self._server.attempts += 1
        if fault is not None and fault[0] in "45":
            return (
                f"{fault} {'4.3.0 Try again later' if fault[0] == '4' else '5.1.1 Mailbox unavailable'}"
            )
        assert isinstance(envelope.content, bytes)
        self._server.received.append(
            Received(
                sender=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                message=message_from_bytes(envelope.content, policy=email.policy.default),
                tls=session.ssl is not None,
            )
        )
        if fault == "drop":
            server.transport.abort()  # the message is here; the 250 never leaves
        return "250 2.0.0 OK"


def _authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


class FakeSmtp:
    """``tls``: a (cert, key) pair offered by STARTTLS (required before MAIL and AUTH); without
    it the server speaks plain text only and offers no STARTTLS."""

    def __init__(self, tls: tuple[Path, Path] | None = None, *, auth: bool = False) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.faults: deque[str] = deque()
        self.attempts = 0
        options: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            options.update(tls_context=context, require_starttls=True)
        if auth:
            options.update(authenticator=_authenticate, auth_require_tls=tls is not None)
        else:
            options.update(auth_require_tls=False)
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10, **options
        )

    def start(self) -> "FakeSmtp":
        self._controller.start()
        return self

    def close(self) -> None:
        self._controller.stop()
