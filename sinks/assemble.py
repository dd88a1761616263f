"""Which sinks run, built from settings in one visible place.

PagerDuty runs when a routing key is set, Slack when a token is set, email when an SMTP host is
set; the status page always runs (Atlassian Statuspage when configured, else the built-in page).
Each sink is told the teams' own routing keys, announcement channels and components (README
"Teams"); without a teams file there is only the default team, today's settings.
"""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from models.escalation import Target
from models.settings import Settings
from models.teams import Teams
from sinks.base import Sink
from sinks.breaker import CircuitBreaker
from sinks.clock import Clock
from sinks.effects import Effects
from sinks.email_client import SmtpSender
from sinks.email_sink import EmailSink
from sinks.pacing import ChannelPacer
from sinks.pagerduty import PagerDutySink
from sinks.pagerduty_client import PagerDutySender
from sinks.retry import RetryPolicy
from sinks.slack import SlackSink
from sinks.slack_client import SlackSender
from sinks.status_builtin import BuiltinStatusPage
from sinks.statuspage import StatusBackend, StatusPageSink
from sinks.statuspage_client import StatuspageClient
from sinks.statuspage_format import Components
from store.deliveries import DeliveryLog
from store.status_page import StatusPageStore

__all__ = ["build_sinks", "effects_for"]


def effects_for(sink: str, settings: Settings, engine: AsyncEngine, clock: Clock) -> Effects:
    """The delivery log, retry policy and a fresh circuit breaker of one sink."""
    return Effects(
        sink=sink,
        log=DeliveryLog(engine),
        clock=clock,
        policy=RetryPolicy(
            initial=settings.sinks_retry_initial_seconds,
            maximum=settings.sinks_retry_max_seconds,
            deadline=settings.sinks_retry_deadline_seconds,
        ),
        breaker=CircuitBreaker(settings.sinks_breaker_failures, settings.sinks_breaker_cooldown_seconds),
    )


def build_sinks(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    *,
    security_contacts: Sequence[Target] = (),
    teams: Teams | None = None,
) -> list[Sink]:
    """The configured sinks; ``security_contacts``: the escalation policy's security and
    data-breach targets (their Slack users and user groups join a security incident's private
    channel, their Slack channels are told its name)."""
    sinks: list[Sink] = []
    timeout = settings.sinks_request_timeout_seconds
    own = teams.teams if teams is not None else ()
    if settings.pagerduty_routing_key is not None:
        sender = PagerDutySender(
            settings.pagerduty_routing_key,
            settings.pagerduty_url(),
            timeout=timeout,
            ca_file=settings.pagerduty_ca_file,
        )
        escalation_senders = {
            name: PagerDutySender(
                key, settings.pagerduty_url(), timeout=timeout, ca_file=settings.pagerduty_ca_file
            )
            for name, key in settings.escalation_pagerduty_routing_keys.items()
        }
        canary_key = settings.canary_pagerduty_routing_key
        canary_sender = (
            PagerDutySender(
                canary_key, settings.pagerduty_url(), timeout=timeout, ca_file=settings.pagerduty_ca_file
            )
            if canary_key is not None
            else None
        )
        team_senders = {
            team.name: PagerDutySender(
                key, settings.pagerduty_url(), timeout=timeout, ca_file=settings.pagerduty_ca_file
            )
            for team in own
            if teams is not None and (key := teams.routing_keys.get(team.name)) is not None
        }
        sinks.append(
            PagerDutySink(
                sender,
                effects_for("pagerduty", settings, engine, clock),
                settings.pagerduty_severities,
                escalation_senders,
                canary_sender,
                team_senders,
            )
        )
    if settings.slack_token is not None:
        sinks.append(
            SlackSink(
                SlackSender(settings.slack_token, settings.slack_base_url, timeout=timeout),
                effects_for("slack", settings, engine, clock),
                settings.slack_severities,
                announce_channel=settings.slack_announce_channel,
                lead=settings.slack_lead,
                pacer=ChannelPacer(clock, settings.slack_channel_interval_seconds),
                security_contacts=security_contacts,
                emailing=settings.email_configured(),
                team_channels={t.name: t.announce_channel for t in own if t.announce_channel},
            )
        )
    if settings.smtp_host is not None:
        smtp = SmtpSender(
            settings.smtp_host,
            settings.smtp_port_or_default(),
            tls_mode=settings.smtp_tls_mode,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            timeout=settings.smtp_timeout_seconds,
        )
        sinks.append(EmailSink(smtp, effects_for("email", settings, engine, clock)))
    backend: StatusBackend
    by_team = {t.name: t.status_page_components for t in own if t.status_page_components is not None}
    if settings.statuspage_api_key is not None and settings.statuspage_page_id is not None:
        backend = StatuspageClient(
            settings.statuspage_api_key,
            settings.statuspage_page_id,
            settings.statuspage_base_url,
            timeout=timeout,
        )
        components = Components(settings.statuspage_components, ids=True, by_team=by_team)
    else:
        backend = BuiltinStatusPage(StatusPageStore(engine), clock)
        components = Components(settings.statuspage_components, by_team=by_team)
    sinks.append(
        StatusPageSink(
            backend,
            effects_for("statuspage", settings, engine, clock),
            settings.statuspage_severities,
            follow_up_minutes=settings.statuspage_followup_minutes,
            components=components,
        )
    )
    return sinks
