"""The email sink: the SMTP server that mails the escalation policy's email contacts.

Unset ``SEVFLOW_SMTP_HOST``: no email sink, and the incident channel says of every email contact
"not emailed (no SMTP configured)". SMTP always runs over TLS (STARTTLS or implicit TLS, the
certificate verified); plain text only with ``SEVFLOW_SMTP_ALLOW_INSECURE=true``.
"""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["EmailSettings"]


class EmailSettings(BaseModel):
    """SMTP for the email contacts (security, legal) of the escalation policy."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    smtp_host: str | None = Field(
        default=None,
        description="SMTP server the email sink sends through. Unset: no email sink; the channel "
        'says "not emailed (no SMTP configured)" beside each email contact.',
    )
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port. Unset: 587 for starttls, 465 for implicit, 25 for none.",
    )
    smtp_tls_mode: Literal["starttls", "implicit", "none"] = Field(
        default="starttls",
        description="starttls (RFC 3207: the server must offer STARTTLS, or nothing is sent), "
        "implicit (TLS from the first byte, RFC 8314) or none (plain text: refused unless "
        "SEVFLOW_SMTP_ALLOW_INSECURE=true).",
    )
    smtp_allow_insecure: bool = Field(
        default=False,
        description="Allow SEVFLOW_SMTP_TLS_MODE=none: mail, and the password, in plain text. "
        "For a relay on the same host only.",
    )
    smtp_ca_file: Path | None = Field(
        default=None,
        description="CA bundle to verify the SMTP server's certificate (a private CA's). Unset: "
        "the system's.",
    )
    smtp_username: str | None = Field(
        default=None, description="SMTP AUTH user name. Unset: no authentication."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="SMTP AUTH password (with SEVFLOW_SMTP_USERNAME)."
    )
    smtp_from: str = Field(
        default="sevflow@localhost",
        min_length=3,
        description="Sender address (From and envelope); its domain ends every Message-ID.",
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3_600, description="Timeout of each SMTP connection and command."
    )

    @model_validator(mode="after")
    def _tls_or_explicitly_insecure(self) -> "EmailSettings":
        if self.smtp_tls_mode == "none" and not self.smtp_allow_insecure:
            raise ValueError(
                "SEVFLOW_SMTP_TLS_MODE=none sends mail and the SMTP password in plain text: use "
                "starttls or implicit, or set SEVFLOW_SMTP_ALLOW_INSECURE=true"
            )
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set SEVFLOW_SMTP_USERNAME and SEVFLOW_SMTP_PASSWORD together")
        if "@" not in self.smtp_from:
            raise ValueError("SEVFLOW_SMTP_FROM must be an email address")
        return self

    def email_configured(self) -> bool:
        """True when the email sink runs (an SMTP host is set)."""
        return self.smtp_host is not None

    def smtp_port_or_default(self) -> int:
        """The port to connect to: the setting, else the mode's usual port."""
        if self.smtp_port is not None:
            return self.smtp_port
        return {"starttls": 587, "implicit": 465, "none": 25}[self.smtp_tls_mode]
