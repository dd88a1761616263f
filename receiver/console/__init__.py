"""The operator console: server-rendered pages at ``/ui/`` on the receiver's internal listener
(receiver/console/app.py), built from settings here."""

from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Mount, Route

from analytics.figures import ResponseTargets
from models.clock import Clock, utc_now
from models.escalation import EscalationPolicy, playbook_policy
from models.settings import Settings
from receiver.access import Credentials
from receiver.console.base import PREFIX, ConsoleConfig, session_key
from receiver.console.identity import ProxyTrust
from receiver.console.links import LinkSettings
from receiver.console.routes import Instrument, console_mount
from receiver.console.session import SessionSigner
from receiver.ratelimit import RateLimiter

__all__ = ["PREFIX", "ConsoleConfig", "console_from_settings", "console_mount"]


def console_from_settings(
    settings: Settings,
    engine: AsyncEngine,
    credentials: Credentials,
    *,
    clock: Clock = utc_now,
    targets: ResponseTargets | None = None,
    policy: EscalationPolicy | None = None,
) -> Callable[[Sequence[Route], Instrument], Mount] | None:
    """What :func:`receiver.app.create_app` mounts (given its API routes); None when disabled.

    ``policy``: the escalation policy the worker runs (``SEVFLOW_ESCALATION_POLICY_FILE``, loaded
    by the receiver role): its acknowledge targets and business hours time the response targets
    (the playbook's without one)."""
    if not settings.ui_enabled:
        return None
    key = settings.ui_session_key.get_secret_value() if settings.ui_session_key else None
    proxy = (
        ProxyTrust(
            settings.ui_trusted_user_header, settings.ui_trusted_proxies, settings.ui_proxy_scopes
        )
        if settings.ui_trusted_user_header
        else None
    )
    config = ConsoleConfig(
        engine=engine,
        credentials=credentials,
        signer=SessionSigner(session_key(key), timedelta(hours=settings.ui_session_hours)),
        clock=clock,
        targets=targets or ResponseTargets.of_policy(policy or playbook_policy()),
        proxy=proxy,
        login_limiter=RateLimiter(settings.ui_login_per_minute / 60, settings.ui_login_burst),
        links=LinkSettings(
            slack_workspace_url=settings.ui_slack_workspace_url,
            pagerduty_subdomain=settings.pagerduty_account_subdomain,
            statuspage_page_id=settings.statuspage_page_id,
            status_page_url=settings.ui_status_page_url,
        ),
    )

    def mount(api_routes: Sequence[Route], instrument: Instrument | None = None) -> Mount:
        return console_mount(config, api_routes, instrument)

    return mount
