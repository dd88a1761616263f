"""The vendors' request signatures, as pure functions: Slack's ``X-Slack-Signature`` v0 (with its
replay window) and PagerDuty's ``X-PagerDuty-Signature`` v1, and the PagerDuty account a webhook's
incident belongs to. Compared in constant time; an empty key verifies nothing."""

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import SecretStr

__all__ = [
    "pagerduty_account",
    "pagerduty_signature",
    "slack_signature",
    "verify_pagerduty",
    "verify_slack",
]

_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")
#: ``https://<subdomain>.pagerduty.com/…`` or, in the EU service region, ``<subdomain>.eu.…``.
_PAGERDUTY_HOST = re.compile(r"([a-z0-9][a-z0-9-]{0,62})(?:\.eu)?\.pagerduty\.com")


def slack_signature(secret: SecretStr, timestamp: str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` (Slack, "Verifying requests")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.get_secret_value().encode(), base, hashlib.sha256).hexdigest()
    return "v0=" + digest


def verify_slack(
    secret: SecretStr,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    window: timedelta = timedelta(minutes=5),
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` and the timestamp is within
    ``window`` of ``now`` (Slack's replay protection: 5 minutes either way)."""
    # ASCII digits, at most 12 (Unix seconds until the year 33658): str.isdigit() also takes "²",
    # and int() of thousands of digits raises instead of answering.
    if not timestamp or not signature or not _SLACK_TIMESTAMP.fullmatch(timestamp.strip()):
        return False
    if not secret.get_secret_value().strip():  # anyone can sign with an empty key
        return False
    if abs(now.timestamp() - int(timestamp)) > window.total_seconds():
        return False
    expected = slack_signature(secret, timestamp.strip(), body)
    return hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace"))


def pagerduty_signature(secret: SecretStr, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of the raw body (PagerDuty webhooks v3, "Verifying Signatures")."""
    return "v1=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()


def verify_pagerduty(secrets: Sequence[SecretStr], header: str | None, body: bytes) -> bool:
    """True when any ``v1=`` entry of ``X-PagerDuty-Signature`` (comma separated, several during
    rotation) matches the body under any configured secret; other versions are ignored."""
    secrets = [s for s in secrets if s.get_secret_value().strip()]  # an empty key signs for anyone
    if not header or not secrets:
        return False
    given = [s.strip().encode("utf-8", "replace") for s in header.split(",")]
    given = [g for g in given if g.startswith(b"v1=")]
    matched = False
    for secret in secrets:
        expected = pagerduty_signature(secret, body).encode()
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def pagerduty_account(html_url: object) -> str | None:
    """The account (subdomain) of a webhook's ``data.html_url``, or None when it names none."""
    if not isinstance(html_url, str) or len(html_url) > 2048:
        return None
    scheme, _, rest = html_url.partition("://")
    host = rest.split("/", 1)[0].lower()
    matched = _PAGERDUTY_HOST.fullmatch(host)
    return matched.group(1) if scheme.lower() == "https" and matched else None
