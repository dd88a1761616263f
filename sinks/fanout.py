"""The sinks side in one place: which sinks exist, what each receives, in which order, with which
guarantees (as streams/pipeline.py is for the worker). sevflow/roles/sinks.py builds it.

Which sinks exist, built in this order by :func:`build_sinks` (one consumer group each on the
``incident-events`` topic, read ``read_committed``, so each reads every event at its own pace and a
slow or failing sink never delays another):

==========  ==========================  ==========================================================
sink        runs when                   receives
==========  ==========================  ==========================================================
pagerduty   a routing key is set        opened / escalated / acknowledged / resolved of the
                                        severities ``SEVFLOW_PAGERDUTY_SEVERITIES`` (trigger,
                                        acknowledge, resolve one alert per incident; escalation
                                        levels on their own routing keys; the canary on its key)
slack       a bot token is set          every event of the severities ``SEVFLOW_SLACK_SEVERITIES``
                                        (incident channel, ``#incidents`` announcement, updates),
                                        escalations naming a Slack channel whatever the severity;
                                        beside it the notices task (forced maintenance windows)
email       an SMTP host is set         escalations naming email targets, then the replies in
                                        their thread (acknowledged, severity, reopened, resolved)
statuspage  always                      events of ``SEVFLOW_STATUSPAGE_SEVERITIES``: Atlassian
                                        Statuspage when configured, else the built-in page (served
                                        by the role); the 30-minute follow-ups beside it
==========  ==========================  ==========================================================

In which order, within a sink (:mod:`sinks.worker`): each poll is decoded (poison is
dead-lettered with its reason), SEV3/SEV4 openings in a storm are folded into one digest, and each
incident's events go, in their order on the topic, into that incident's lane; lanes run side by
side (SEV1 first), so one incident's trouble never delays another's, and an acknowledgement or a
resolution never overtakes the trigger before it.

With which guarantees:

* **at most once per effect**: every vendor call goes through :class:`sinks.effects.Effects`, the
  delivery log checked before and written after a confirmed call, plus the vendors' idempotency
  keys (PagerDuty ``dedup_key``, Slack message metadata, the Statuspage incident id);
* **nothing skipped**: offsets are committed per partition only up to the oldest event not yet
  delivered, dead-lettered or deliberately skipped; a restart reads the rest again;
* **retries are data**: ``DeliveryError(retryable, reason, retry_after)``; one retry policy with a
  deadline and a circuit breaker per sink, then the dead-letter topic (replayable);
* **a sink stops alone**: one that dead-letters too much in a row (:class:`SinkStopped`, as with
  a revoked token) leaves its consumer group, its events wait in Kafka, the others go on
  (:meth:`Fanout.until_stopped_or_failed`);
* **a clean stop finishes the batch in hand** within :data:`SINK_STOP_GRACE`, recorded and
  committed, so the next process repeats no call.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from models.escalation import Target
from models.settings import Settings
from models.teams import Team, Teams
from sinks.base import Sink
from sinks.breaker import CircuitBreaker
from sinks.clock import Clock
from sinks.dlq import DeadLetterWriter
from sinks.effects import Effects
from sinks.email_client import SmtpSender
from sinks.email_sink import EmailSink
from sinks.errors import SinkStopped
from sinks.kafka import SinkConsumer, sink_consumer
from sinks.metrics import SinkCollector
from sinks.notices import NoticeAnnouncer, announce_until
from sinks.pacing import ChannelPacer
from sinks.pagerduty import PagerDutySink
from sinks.pagerduty_client import PagerDutySender
from sinks.retry import RetryPolicy
from sinks.slack import SlackSink
from sinks.slack_client import SlackSender
from sinks.status_builtin import BuiltinStatusPage
from sinks.statuspage import StatusBackend, StatusPageSink, follow_up_until
from sinks.statuspage_client import StatuspageClient
from sinks.statuspage_format import Components
from sinks.storm import StormDetector
from sinks.worker import SinkWorker
from store.deliveries import DeliveryLog
from store.notices import NoticeStore
from store.status_page import StatusPageStore

__all__ = ["SINK_STOP_GRACE", "Fanout", "build_sinks", "effects_for"]

log = logging.getLogger("sevflow.sinks")

#: Seconds the sinks' consumers get, once asked to stop, to finish the batch in hand (its vendor
#: calls answered and recorded in the delivery log, its offsets committed) before they are
#: cancelled. Cancelled at once, a call the vendor had taken was not recorded, and the next
#: process made it again (a second PagerDuty trigger; a Slack post reconciled). Below the worker's
#: stop deadline and the 30 s supervisors give before SIGKILL.
SINK_STOP_GRACE = 15.0


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


def _pagerduty(
    settings: Settings, engine: AsyncEngine, clock: Clock, teams: Teams | None
) -> PagerDutySink | None:
    if settings.pagerduty_routing_key is None:
        return None

    def sender(key: SecretStr) -> PagerDutySender:
        return PagerDutySender(
            key,
            settings.pagerduty_url(),
            timeout=settings.sinks_request_timeout_seconds,
            ca_file=settings.pagerduty_ca_file,
        )

    canary_key = settings.canary_pagerduty_routing_key
    return PagerDutySink(
        sender(settings.pagerduty_routing_key),
        effects_for("pagerduty", settings, engine, clock),
        settings.pagerduty_severities,
        {name: sender(key) for name, key in settings.escalation_pagerduty_routing_keys.items()},
        sender(canary_key) if canary_key is not None else None,
        _team_senders(teams, sender),
        {
            team: {target: sender(key) for target, key in keys.items()}
            for team, keys in (teams.escalation_keys if teams is not None else {}).items()
        },
    )


def _team_senders(
    teams: Teams | None, sender: Callable[[SecretStr], PagerDutySender]
) -> dict[str, PagerDutySender]:
    """A sender per team of the teams file with a routing key of its own (README "Teams")."""
    if teams is None:
        return {}
    return {
        team.name: sender(key)
        for team in teams.teams
        if (key := teams.routing_keys.get(team.name)) is not None
    }


def _slack(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    security_contacts: Sequence[Target],
    teams: Teams | None,
) -> SlackSink | None:
    if settings.slack_token is None:
        return None
    timeout = settings.sinks_request_timeout_seconds
    return SlackSink(
        SlackSender(settings.slack_token, settings.slack_base_url, timeout=timeout),
        effects_for("slack", settings, engine, clock),
        settings.slack_severities,
        announce_channel=settings.slack_announce_channel,
        lead=settings.slack_lead,
        pacer=ChannelPacer(clock, settings.slack_channel_interval_seconds),
        security_contacts=security_contacts,
        emailing=settings.email_configured(),
        team_channels={t.name: t.announce_channel for t in _own(teams) if t.announce_channel},
        team_invites={t.name: t.private_channel_invite for t in _own(teams)},
    )


def _email(settings: Settings, engine: AsyncEngine, clock: Clock) -> EmailSink | None:
    if settings.smtp_host is None:
        return None
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
    return EmailSink(smtp, effects_for("email", settings, engine, clock))


def _own(teams: Teams | None) -> "Sequence[Team]":
    """The teams of the teams file (not the implicit default team)."""
    return teams.teams if teams is not None else ()


def _status_page(
    settings: Settings, engine: AsyncEngine, clock: Clock, teams: Teams | None
) -> StatusPageSink:
    by_team = {
        t.name: t.status_page_components for t in _own(teams) if t.status_page_components is not None
    }
    backend: StatusBackend
    if settings.statuspage_api_key is not None and settings.statuspage_page_id is not None:
        backend = StatuspageClient(
            settings.statuspage_api_key,
            settings.statuspage_page_id,
            settings.statuspage_base_url,
            timeout=settings.sinks_request_timeout_seconds,
        )
        components = Components(settings.statuspage_components, ids=True, by_team=by_team)
    else:
        backend = BuiltinStatusPage(StatusPageStore(engine), clock)
        components = Components(settings.statuspage_components, by_team=by_team)
    return StatusPageSink(
        backend,
        effects_for("statuspage", settings, engine, clock),
        settings.statuspage_severities,
        follow_up_minutes=settings.statuspage_followup_minutes,
        components=components,
    )


def build_sinks(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    *,
    security_contacts: Sequence[Target] = (),
    teams: Teams | None = None,
) -> list[Sink]:
    """The configured sinks, in the order of the module docstring's table; ``security_contacts``:
    the escalation policy's security and data-breach targets (their Slack users and user groups
    join a security incident's private channel, their Slack channels are told its name);
    ``teams``: each team's routing key, announcement channel and components (README "Teams");
    None: only the default team, today's settings."""
    optional = [
        _pagerduty(settings, engine, clock, teams),
        _slack(settings, engine, clock, security_contacts, teams),
        _email(settings, engine, clock),
    ]
    status_page = _status_page(settings, engine, clock, teams)
    return [*(sink for sink in optional if sink is not None), status_page]


class Fanout:
    """Each sink's consumer and worker, and the tasks beside them (Slack's notices, the status
    page's follow-ups, and whatever the role adds with :meth:`add`), run until stopped."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        sinks: Sequence[Sink],
        dead_letters: AIOKafkaProducer,
        collector: SinkCollector,
        teams: Teams | None = None,
    ) -> None:
        self._settings = settings
        self._teams = teams  # a forced window that concerns a team is told in its channel too
        self._engine = engine
        self._clock = clock
        self.sinks = list(sinks)
        self._producer = dead_letters
        self._collector = collector
        self.tasks: list[asyncio.Task[None]] = []
        self._consumers: dict[asyncio.Task[None], tuple[str, SinkConsumer]] = {}
        self._started: list[SinkConsumer] = []

    def add(self, task: asyncio.Task[None]) -> None:
        """Run ``task`` beside the sinks: cancelled when they stop (unless named status-page), its
        failure stops them."""
        self.tasks.append(task)

    def _worker(self, sink: Sink) -> SinkWorker:
        settings = self._settings
        return SinkWorker(
            sink,
            dead_letters=DeadLetterWriter(self._producer, settings.sinks_dlq_topic),
            storm=StormDetector(settings.sinks_storm_threshold),
            clock=self._clock,
            concurrency=settings.sinks_concurrency,
            max_consecutive_dead=settings.sinks_dlq_max_consecutive,
            # A call in flight is answered within the request timeout; within the stop grace.
            drain_grace=min(settings.sinks_request_timeout_seconds + 1, SINK_STOP_GRACE - 2),
        )

    async def start(self, stop: asyncio.Event) -> None:
        """Start every sink's consumer and worker, in order, and the tasks beside them."""
        settings = self._settings
        consumers = [sink_consumer(settings, sink.name) for sink in self.sinks]
        self._started = consumers
        for sink, consumer in zip(self.sinks, consumers, strict=True):
            await consumer.start()
            task = asyncio.create_task(self._worker(sink).run(consumer, stop), name=f"sink-{sink.name}")
            self.add(task)
            self._consumers[task] = (sink.name, consumer)
            log.info("sink %s consuming %s", sink.name, settings.events_topic)
            if isinstance(sink, SlackSink):
                store = NoticeStore(self._engine)
                announcer = NoticeAnnouncer(sink, store, self._clock, self._teams)
                self._collector.notices = announcer
                self.add(asyncio.create_task(announce_until(announcer, stop), name="notices"))
            if isinstance(sink, StatusPageSink) and settings.statuspage_followup_minutes:
                interval = timedelta(minutes=settings.statuspage_followup_minutes)
                follow_ups = follow_up_until(sink, interval, self._clock, stop)
                self.add(asyncio.create_task(follow_ups, name="status-followups"))

    async def until_stopped_or_failed(self, stop: asyncio.Event) -> None:
        """Wait until ``stop`` is set or a task fails (its exception is raised, ``stop`` set).

        A sink that stops itself (:class:`SinkStopped`: it dead-lettered too much in a row, as with
        a revoked Slack token) stops alone: its consumer leaves, its events wait in Kafka for its
        next start, ``sevflow_sink_stopped`` says so, and the other sinks go on. Stopping them all
        with it let a broken Slack integration stop PagerDuty's pages. Once no sink is left, the
        last one's exception is raised."""
        stopper = asyncio.create_task(stop.wait())
        pending: set[asyncio.Task[Any]] = {*self.tasks, stopper}
        try:
            while stopper in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is stopper or (exc := task.exception()) is None:
                        continue
                    if not isinstance(exc, SinkStopped) or task not in self._consumers:
                        raise exc
                    name, consumer = self._consumers[task]
                    self._collector.stopped.add(name)
                    if not any(t in pending for t in self._consumers):
                        raise exc
                    log.error("%s; the other sinks go on", exc)
                    await consumer.stop()
        finally:
            stop.set()
            stopper.cancel()

    async def close(self) -> None:
        """Let each sink finish the batch in hand (within :data:`SINK_STOP_GRACE`), cancel the
        rest, stop the consumers and close the sinks (``stop`` must be set)."""
        # A sink's worker checks ``stop`` between batches: it finishes and commits the batch in
        # hand first, within the grace; what is still running after it is cancelled.
        busy = [t for t in self._consumers if not t.done()]
        if busy:
            log.info("stopping: the sinks finish their batches in hand (up to %.0fs)", SINK_STOP_GRACE)
            await asyncio.wait(busy, timeout=SINK_STOP_GRACE)
        for task in self.tasks:
            if task.get_name() != "status-page":
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for consumer in self._started:
            await consumer.stop()
        for sink in self.sinks:
            await sink.close()
