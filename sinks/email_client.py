"""SMTP through aiosmtplib: one connection per email, TLS always (unless explicitly insecure).

::

    starttls   connect in plain text, EHLO, STARTTLS (the server must offer it: RFC 3207), EHLO
    implicit   TLS from the first byte (RFC 8314 "submissions", port 465)
    none       plain text: only with SEVFLOW_SMTP_ALLOW_INSECURE=true (refused at start otherwise)

The server's certificate is verified (the system's CAs, or ``SEVFLOW_SMTP_CA_FILE``). Emails are
rare (a few per security incident), so a connection is opened per email and closed after it:
nothing idles, and a server restarted between two incidents costs nothing.

What fails, as :class:`~sinks.errors.DeliveryError` (RFC 5321 §4.2.1: 4yz "transient negative",
5yz "permanent negative")::

    4xx reply (greylisting, mailbox busy, 421 closing)   retryable
    connection refused / dropped / timed out             retryable
    5xx reply (unknown recipient, message refused, 535)  permanent
    STARTTLS not offered, certificate not trusted        permanent (a configuration to fix)

A server that took the DATA and then dropped the connection before its 250 has the email, and
the retry sends it again: RFC 5321 §6.1 ("duplicate messages") accepts this; the two copies carry
the same ``Message-ID``, so the duplicate can be recognised. No SMTP command asks a server
whether it already has a message, so there is nothing to reconcile against.
"""

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
from pydantic import SecretStr

from sinks.errors import DeliveryError
from sinks.trust import trusting

__all__ = ["SmtpSender", "classify_smtp"]


def _reply_error(code: int, message: str, what: str) -> DeliveryError:
    return DeliveryError(400 <= code < 500, f"{what}: SMTP {code} {message.strip()[:200]}")


def classify_smtp(error: Exception) -> DeliveryError:
    """The :class:`DeliveryError` for an aiosmtplib (or socket/TLS) error; never a credential."""
    if isinstance(error, ssl.SSLCertVerificationError | ssl.SSLError) or isinstance(
        error.__cause__, ssl.SSLError
    ):
        return DeliveryError(False, f"SMTP TLS: {error}")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        words = ", ".join(f"{r.recipient} ({r.code})" for r in error.recipients)
        return DeliveryError(
            bool(codes) and all(400 <= c < 500 for c in codes), f"SMTP recipients refused: {words}"
        )
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return _reply_error(error.code, "authentication failed", "SMTP AUTH")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _reply_error(error.code, error.message, "SMTP")
    if isinstance(error, aiosmtplib.SMTPNotSupported) or (
        # Asked for STARTTLS, the server does not offer it: aiosmtplib raises the base class.
        type(error) is aiosmtplib.SMTPException and "STARTTLS" in str(error)
    ):
        return DeliveryError(False, f"SMTP: {error}; refusing to send in plain text")
    if isinstance(error, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError | OSError):
        return DeliveryError(True, f"SMTP connection: {type(error).__name__}: {error}")
    return DeliveryError(False, f"SMTP: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class Accepted:
    """What the server said: the recipients it refused (the others have the email)."""

    refused: dict[str, str]


class SmtpSender:
    """Sends one :class:`EmailMessage` to its envelope recipients per call."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls_mode: str,
        sender: str,
        username: str | None = None,
        password: SecretStr | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._tls_mode = tls_mode
        self.sender = sender
        self._username = username
        self._password = password
        self._timeout = timeout
        self._tls: ssl.SSLContext | None = None
        if tls_mode != "none":
            self._tls = (
                trusting(ca_file, "SEVFLOW_SMTP_CA_FILE") if ca_file else ssl.create_default_context()
            )

    async def send(self, message: EmailMessage, recipients: Sequence[str]) -> Accepted:
        """Deliver ``message`` to ``recipients`` (the envelope; headers are the message's)."""
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=self.sender,
                recipients=list(recipients),
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password.get_secret_value() if self._password else None,
                use_tls=self._tls_mode == "implicit",
                start_tls=self._tls_mode == "starttls",
                tls_context=self._tls,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise classify_smtp(error) from None
        return Accepted({to: f"{r.code} {r.message}"[:200] for to, r in refused.items()})
