"""Acknowledge, resolve and escalate to the manager from outside: the HTTP API, Slack buttons and
PagerDuty webhooks.

=========================================  ==================================================
``POST /api/incidents/{id}/ack|resolve``   token with ``write`` scope; optional JSON
                                           ``{"by": "a note", "episode": 2}`` (the incident's
                                           ``flaps`` as read), for resolve also ``root_cause``,
                                           ``fix``, ``follow_up``; optional ``Idempotency-Key``
``POST /api/incidents/{id}/escalate``      the same, with ``{"to": "manager"}`` required
``POST /callbacks/slack/interactivity``    ``block_actions`` with ``action_id`` ack / resolve /
                                           escalate_manager and ``value`` = incident id;
                                           ``X-Slack-Signature`` v0
``POST /callbacks/pagerduty``              webhooks v3 ``incident.acknowledged`` / ``.resolved``;
                                           ``data.incident_key`` (our dedup_key) = incident id,
                                           or ``<id>/escalation/<level>`` for a level's own page
                                           (acknowledges); ``X-PagerDuty-Signature`` v1
=========================================  ==================================================

Who may act, beyond a valid signature: a Slack button only for members of the configured
workspace and, optionally, user group (:mod:`receiver.slack_callers`; anyone else gets an ephemeral
refusal); a PagerDuty webhook only for the configured account, read from the incident's
``data.html_url`` (``https://<subdomain>.pagerduty.com/incidents/…``): another account's event is
answered ``202`` ``"ignored"`` (so PagerDuty does not retry it) and logged, never applied.

Each request becomes a :class:`models.incident.Command` (``actor`` says who and through what) that
is published to the commands topic; the stream worker applies it idempotently by ``command_id``
and emits ``acknowledged`` / ``resolved`` on ``incident-events``. Applying it takes the incident's
lock, the same one the escalation loop takes, so once the acknowledgement is applied no further
level fires.

Status codes: a missing or wrong credential or signature, or a Slack timestamp outside the replay
window, is ``401`` and publishes nothing. ``503`` + ``Retry-After`` when Kafka did not take the
command (Slack shows an error, PagerDuty retries). Anything else that can never succeed is a 4xx
naming the problem, except for PagerDuty, which disables a subscription after repeated 4xx: an
event sevflow does not act on is answered ``202`` with ``"ignored"`` and the reason.

Signatures are compared in constant time; secrets never appear in a response or a log line.

The modules: :mod:`~receiver.callbacks.signatures` (pure), :mod:`~receiver.callbacks.common` (body,
publishing, command ids), one per caller: :mod:`~receiver.callbacks.api`,
:mod:`~receiver.callbacks.slack`, :mod:`~receiver.callbacks.pagerduty`; this one assembles their
routes.
"""

from collections.abc import Sequence
from datetime import timedelta

from pydantic import SecretStr
from starlette.routing import Route

from models.clock import Clock, utc_now
from models.settings import Settings
from receiver.body import BODY_READ_SECONDS
from receiver.callbacks.api import API_ACK_PATH, API_ESCALATE_PATH, API_RESOLVE_PATH, api_endpoint
from receiver.callbacks.api_note import API_NOTES_PATH, note_endpoint
from receiver.callbacks.common import CallbackContext, CommandSink
from receiver.callbacks.pagerduty import PAGERDUTY_PATH, PagerDutyCallback
from receiver.callbacks.signatures import (
    pagerduty_account,
    pagerduty_signature,
    slack_signature,
    verify_pagerduty,
    verify_slack,
)
from receiver.callbacks.slack import SLACK_PATH, SlackCallback
from receiver.slack_callers import SlackCallers

__all__ = [
    "API_ACK_PATH",
    "API_ESCALATE_PATH",
    "API_RESOLVE_PATH",
    "PAGERDUTY_PATH",
    "SLACK_PATH",
    "CommandSink",
    "callback_routes",
    "pagerduty_account",
    "pagerduty_signature",
    "routes_from_settings",
    "slack_callers_from_settings",
    "slack_signature",
    "verify_pagerduty",
    "verify_slack",
]


def callback_routes(
    publisher: CommandSink,
    *,
    slack_signing_secret: SecretStr | None = None,
    slack_callers: SlackCallers | None = None,
    pagerduty_secrets: Sequence[SecretStr] = (),
    pagerduty_account: str | None = None,
    clock: Clock = utc_now,
    slack_replay_window: timedelta = timedelta(minutes=5),
    max_body_bytes: int = 256 * 1024,
    body_read_seconds: float = BODY_READ_SECONDS,
) -> list[Route]:
    """The acknowledgement routes, to mount into the receiver's Starlette app.

    The API routes are always served, behind the ``write`` scope the receiver checks
    (receiver/access.py: the token's name is the command's actor); the
    Slack and PagerDuty routes only when their secret is configured. An empty (or blank) secret or
    token is not configured: an HMAC under an empty key is one anyone can compute.

    The Slack route needs ``slack_callers`` (who may press), the PagerDuty route
    ``pagerduty_account`` (whose events count): without them a :class:`ValueError`."""
    if slack_signing_secret is not None and not slack_signing_secret.get_secret_value().strip():
        slack_signing_secret = None
    pagerduty_secrets = [s for s in pagerduty_secrets if s.get_secret_value().strip()]
    if slack_signing_secret is not None and slack_callers is None:
        raise ValueError("the Slack callback needs slack_callers: who may press the buttons")
    if pagerduty_secrets and not pagerduty_account:
        raise ValueError("the PagerDuty callback needs pagerduty_account: whose events count")
    context = CallbackContext(
        publisher,
        clock=clock,
        max_body_bytes=max_body_bytes,
        body_read_seconds=body_read_seconds,
        slack_replay_window=slack_replay_window,
    )
    routes = [
        Route(API_ACK_PATH, api_endpoint(context, "acknowledge"), methods=["POST"], name="api_ack"),
        Route(API_RESOLVE_PATH, api_endpoint(context, "resolve"), methods=["POST"], name="api_resolve"),
        Route(
            API_ESCALATE_PATH, api_endpoint(context, "escalate"), methods=["POST"], name="api_escalate"
        ),
        Route(API_NOTES_PATH, note_endpoint(context), methods=["POST"], name="api_note"),
    ]
    if slack_signing_secret is not None:
        assert slack_callers is not None
        slack = SlackCallback(context, slack_signing_secret, slack_callers)
        routes.append(Route(SLACK_PATH, slack.endpoint, methods=["POST"], name="slack_callback"))
    if pagerduty_secrets:
        assert pagerduty_account is not None
        pagerduty = PagerDutyCallback(context, pagerduty_secrets, pagerduty_account)
        routes.append(
            Route(PAGERDUTY_PATH, pagerduty.endpoint, methods=["POST"], name="pagerduty_callback")
        )
    return routes


def slack_callers_from_settings(settings: Settings) -> SlackCallers | None:
    """Who may press the Slack buttons, as configured; None when the buttons are not served."""
    if settings.slack_signing_secret is None:
        return None
    # Settings refuse a signing secret without a team id and a token.
    assert settings.slack_team_id is not None
    assert settings.slack_token is not None
    return SlackCallers(
        settings.slack_token,
        settings.slack_base_url,
        settings.slack_team_id,
        allowed_usergroup=settings.slack_allowed_usergroup,
        cache_seconds=settings.slack_caller_cache_seconds,
        allow_insecure=settings.allow_insecure_vendor_urls,
    )


def routes_from_settings(
    settings: Settings,
    publisher: CommandSink,
    *,
    clock: Clock = utc_now,
    slack_callers: SlackCallers | None = None,
) -> list[Route]:
    """:func:`callback_routes` configured from settings; ``slack_callers`` from
    :func:`slack_callers_from_settings` (the caller closes it)."""
    return callback_routes(
        publisher,
        slack_signing_secret=settings.slack_signing_secret,
        slack_callers=slack_callers,
        pagerduty_secrets=settings.pagerduty_webhook_secrets,
        pagerduty_account=settings.pagerduty_account_subdomain,
        clock=clock,
        slack_replay_window=timedelta(seconds=settings.slack_replay_window_seconds),
        max_body_bytes=settings.callback_max_body_bytes,
    )
