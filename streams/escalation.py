"""The escalation loop: stored deadlines compared with ``now``, advanced under the incident's lock.

The worker calls :func:`run_escalations` from a timer (every ``SEVFLOW_ESCALATION_INTERVAL_SECONDS``)
with the injected clock's ``now``. One run:

1. scans for incidents that need attention (:meth:`store.escalations.EscalationRepo.candidates`):
   newly opened ones are armed here, lazily, so the alert pipeline needs no change;
2. for each, in **one** transaction: locks the incident (``tx.lock_incident``), reads its
   escalation row, arms it (policy snapshot) when the incident is new or reopened, calls the pure
   :func:`models.escalation.advance` and, for each firing, stages
   ``annotate(incident, escalated | sla_breached, Actor(via="sevflow"), now, ...)`` into the outbox,
   audits it, and writes the row back with a compare-and-set on its version.

Why it is safe with several workers and after restarts: deadlines live in the database, so a
restarted worker sees what is overdue and fires it once; the incident lock serialises a run with
acknowledgements (an ack committed first means nothing fires; an escalation committed first is
followed by the ack); a second run that read the same row before the first committed fails the
compare-and-set (or the audit log's primary key) and rolls back everything it staged. A
:class:`store.leases.Lease` may be passed so that only one worker scans at a time; it is an
optimisation, not what guarantees "exactly once".
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from models.escalation import (
    EscalationPolicy,
    EscalationState,
    PlaybookTimes,
    advance,
    arm,
    playbook_policy,
)
from models.events import EventType, IncidentEvent, IncidentState
from models.incident import SEVFLOW, annotate
from models.severity import Severity
from models.teams import Teams
from models.text_files import TextFileError, read_text
from store.escalations import EscalationRepo, EscalationTx, StaleEscalation, escalation_transaction
from store.incidents import IncidentStore, IncidentTx
from store.leases import Lease
from streams.failures import is_permanent, reason_of

__all__ = [
    "EscalationMetrics",
    "PolicyError",
    "arm_opened",
    "load_policy",
    "parse_policy",
    "run_escalations",
    "team_policies",
]

log = logging.getLogger(__name__)

#: Escalations advanced in one transaction.
CHUNK = 50

_SLA_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200)


class PolicyError(ValueError):
    """The escalation policy file is unreadable or invalid (the message names the field)."""


def parse_policy(text: str, *, source: str = "policy") -> EscalationPolicy:
    """An :class:`EscalationPolicy` from YAML text.

    Example (every key optional except ``levels``; durations like ``15m``, ``2h``, ``1h30m``)::

        levels:
          - {name: primary on-call, after: 0m, targets: [{kind: pagerduty, to: primary}]}
          - {name: secondary on-call, after: 15m, targets: [{kind: pagerduty, to: secondary}]}
          - name: engineering manager
            after: 30m
            severities: [SEV1]
            targets: [{kind: phone, to: engineering-manager}]
        repeat: 1
        repeat_interval: 15m
        acknowledge_targets: {SEV1: 15m, SEV2: 30m, SEV3: 2h, SEV4: next_business_day}
        resolve_targets: {SEV1: 4h}
        security_targets: [{kind: email, to: security@optimal-build.com},
                           {kind: slack, to: "#security-incidents"}]
        data_breach_targets: [{kind: email, to: legal@optimal-build.com}]
        data_loss_targets: []                  # data loss is SEV1; no extra contact by default
        overrides:
          - services: [payments]
            severities: [SEV1, SEV2]
            levels: [{name: payments on-call, after: 0m, targets: [{kind: slack, to: "@payments"}]}]
        business_hours: {timezone: Europe/London, days: [mon, tue, wed, thu, fri],
                         start: "09:00", end: "17:30", holidays: [2026-12-25]}
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not YAML: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: expected a mapping with at least 'levels'")
    if "emailing" in document:
        raise PolicyError(f"{source}: emailing: set by SEVFLOW_SMTP_HOST, not by the policy file")
    if "teams" in document:
        raise PolicyError(f"{source}: teams: a team's policy is set in the teams file (escalation)")
    try:
        return EscalationPolicy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise PolicyError(f"{source}: {problems}") from None


def _read_policy(path: Path) -> EscalationPolicy:
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise PolicyError(str(exc)) from None
    return parse_policy(text, source=str(path))


def load_policy(
    path: Path | None,
    times: PlaybookTimes | None = None,
    *,
    emailing: bool = False,
    teams: Teams | None = None,
) -> EscalationPolicy:
    """The policy in ``path`` (``SEVFLOW_ESCALATION_POLICY_FILE``), or the playbook's when None
    with ``times`` (``SEVFLOW_ESCALATION_*_MINUTES``, :meth:`EscalationSettings.playbook_times`);
    ``emailing``: SMTP is configured (``Settings.email_configured``), said in contacts' reasons;
    ``teams``: each team's own policy attached (:func:`team_policies`).

    Read once at start-up; a bad file stops the worker with a message naming the field."""
    policy = playbook_policy(times) if path is None else _read_policy(path)
    policy = policy.model_copy(update={"emailing": emailing})
    return policy if teams is None else team_policies(policy, teams)


def team_policies(policy: EscalationPolicy, teams: Teams) -> EscalationPolicy:
    """``policy`` with the policy of each team that has one of its own (README "Teams"): its
    ``escalation.policy_file`` (relative to the teams file), else its ``escalation.overrides``
    tried before the default policy's; its ``business_hours`` over either. A team with none of
    these follows ``policy`` itself. A bad team policy file raises :class:`PolicyError` naming
    the teams file, the team's line and the policy file's problem."""
    own: dict[str, EscalationPolicy] = {}
    for team in teams.teams:
        escalation = team.escalation
        if escalation is None and team.business_hours is None:
            continue
        base = policy
        if escalation is not None and escalation.policy_file is not None:
            file = escalation.policy_file
            if not file.is_absolute() and teams.source:
                file = Path(teams.source).parent / file
            try:
                base = _read_policy(file).model_copy(update={"emailing": policy.emailing})
            except PolicyError as exc:
                where = f"{teams.source}:{teams.lines.get(team.name, 1)}"
                raise PolicyError(f"{where}: team {team.name!r}: escalation: {exc}") from None
        overrides = escalation.overrides if escalation is not None else ()
        own[team.name] = base.adapted(overrides, team.business_hours)
    return policy.model_copy(update={"teams": own})


class EscalationMetrics:
    """Escalation and SLA metrics, on a registry of their own (the caller exposes it)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.escalations = Counter(
            "sevflow_escalations_total",
            "Escalation levels fired (escalated events), by level.",
            ["level"],
            registry=self.registry,
        )
        self.sla_breaches = Counter(
            "sevflow_sla_breaches_total",
            "Response targets missed (sla_breached events), by severity and kind "
            "(acknowledge, resolve).",
            ["severity", "kind"],
            registry=self.registry,
        )
        self.time_to_acknowledge = Histogram(
            "sevflow_time_to_acknowledge_seconds",
            "From the start of an escalation to its acknowledgement, by severity.",
            ["severity"],
            buckets=_SLA_BUCKETS,
            registry=self.registry,
        )
        self.time_to_resolve = Histogram(
            "sevflow_time_to_resolve_seconds",
            "From the start of an escalation to the incident's resolution, by severity.",
            ["severity"],
            buckets=_SLA_BUCKETS,
            registry=self.registry,
        )

    def count(self, events: Sequence[IncidentEvent], severity: Severity | None = None) -> None:
        """Count the escalations and SLA breaches among ``events`` (breaches by ``severity``, by
        default the incident's)."""
        for event in events:
            if event.type is EventType.ESCALATED:
                self.escalations.labels(event.data.get("level", "")).inc()
            elif event.type is EventType.SLA_BREACHED:
                level = severity or event.incident.severity
                self.sla_breaches.labels(level.value, event.data.get("kind", "")).inc()

    def observe(
        self, before: EscalationState | None, after: EscalationState, events: list[IncidentEvent]
    ) -> None:
        self.count(events, after.severity)
        severity = after.severity.value
        if after.time_to_acknowledge is not None and (before is None or before.acknowledged_at is None):
            self.time_to_acknowledge.labels(severity).observe(after.time_to_acknowledge.total_seconds())
        if after.time_to_resolve is not None and (before is None or before.resolved_at is None):
            self.time_to_resolve.labels(severity).observe(after.time_to_resolve.total_seconds())


@dataclass
class _Result:
    before: EscalationState | None = None
    after: EscalationState | None = None
    events: list[IncidentEvent] = field(default_factory=list)
    #: A canary incident: its times are not response times (not observed in the metrics).
    canary: bool = False


async def _escalate(
    tx: IncidentTx, etx: EscalationTx, policy: EscalationPolicy, incident_id: str, now: datetime
) -> _Result:
    """Arm or advance one incident's escalation inside the caller's transaction."""
    result = _Result()
    incident = await tx.lock_incident(incident_id)
    if incident is None:
        return result
    result.canary = incident.canary
    stored = await etx.load(incident_id)
    result.before = stored
    state = stored
    if stored is None or (
        incident.state is IncidentState.TRIGGERED and incident.flaps > stored.generation
    ):
        state = arm(incident, policy, now)
    assert state is not None
    step = advance(state, incident, now, emailing=policy.emailing)
    if stored is not None and step.state == stored and incident.sequence == stored.seen_sequence:
        return result  # nothing fired, nothing changed
    for firing in step.firings:
        outcome = annotate(incident, firing.type, SEVFLOW, now, reason=firing.reason, data=firing.data)
        assert outcome.incident is not None
        incident = outcome.incident
        tx.stage(outcome)
        result.events.extend(outcome.events)
        await etx.log(step.state, firing, outcome.events[0], now)
    seen = step.state.model_copy(update={"seen_sequence": incident.sequence})
    result.after = await etx.save(seen, stored.version if stored is not None else None, now)
    return result


async def arm_opened(
    tx: IncidentTx, policy: EscalationPolicy, incident_ids: Sequence[str], now: datetime
) -> list[IncidentEvent]:
    """Start the escalation of incidents opened (or reopened) in ``tx``, in that transaction:
    the first level is notified with the opening, without waiting for the loop's next tick, and
    the incidents are already locked and in memory."""
    etx = EscalationTx(tx.connection)
    await etx.preload(incident_ids)
    events: list[IncidentEvent] = []
    for incident_id in incident_ids:
        events.extend((await _escalate(tx, etx, policy, incident_id, now)).events)
    await etx.flush()
    return events


async def _escalate_together(
    store: IncidentStore, policy: EscalationPolicy, incident_ids: Sequence[str], now: datetime
) -> list[tuple[str, _Result]]:
    """Several incidents in one transaction (one commit instead of one each: a storm of new
    incidents is armed at the cost of a few transactions). All or nothing."""
    results = []
    async with escalation_transaction(store.engine) as (tx, etx):
        await tx.lock_incidents(incident_ids)
        await etx.preload(incident_ids)
        for incident_id in incident_ids:
            results.append((incident_id, await _escalate(tx, etx, policy, incident_id, now)))
    return results


async def _escalate_chunk(
    store: IncidentStore, policy: EscalationPolicy, incident_ids: Sequence[str], now: datetime
) -> list[tuple[str, _Result]]:
    """A chunk together; when another run advanced one of them first, or one of them can never be
    advanced, the others one by one.

    An incident whose escalation fails permanently (the database refuses a value of it: a
    :func:`streams.failures.is_permanent` error) is logged and left for the next tick; before,
    the run failed at it at every tick, and no escalation after it in the chunk or the chunks
    behind it ever fired. A transient error still ends the run (the next tick retries it all)."""
    try:
        return await _escalate_together(store, policy, incident_ids, now)
    except (StaleEscalation, IntegrityError):
        if len(incident_ids) == 1:
            raise
    except SQLAlchemyError as exc:
        if not is_permanent(exc) or len(incident_ids) == 1:
            raise
    results = []
    for incident_id in incident_ids:
        try:
            results.extend(await _escalate_together(store, policy, [incident_id], now))
        except (StaleEscalation, IntegrityError) as exc:
            # Another run advanced this escalation first; everything staged here was rolled back.
            log.info("escalation of %s already advanced elsewhere (%s)", incident_id, type(exc).__name__)
        except SQLAlchemyError as exc:
            if not is_permanent(exc):
                raise
            _cannot_advance(incident_id, exc)
    return results


def _cannot_advance(incident_id: str, exc: SQLAlchemyError) -> None:
    log.error(
        "escalation of %s cannot be advanced (%s); the others go on, it is tried again at the next tick",
        incident_id,
        reason_of(exc),
    )


async def run_escalations(
    store: IncidentStore,
    policy: EscalationPolicy,
    now: datetime,
    *,
    limit: int = 200,
    lease: Lease | None = None,
    metrics: EscalationMetrics | None = None,
    settle_horizon: timedelta = timedelta(hours=1),
) -> list[IncidentEvent]:
    """Advance every escalation that needs it at ``now``; returns the events written (committed).

    Call it from a timer with the clock's ``now``. Transient database errors propagate (nothing is
    half-done: each chunk of incidents is one transaction), so the caller logs and the next tick
    retries; an incident the database refuses for good is logged and passed over. With ``lease``,
    a worker that does not hold it does nothing.
    """
    if lease is not None and not await lease.acquire(now):
        return []
    repo = EscalationRepo(store.engine)
    events: list[IncidentEvent] = []
    candidates = await repo.candidates(now, limit=limit, settle_horizon=settle_horizon)
    done: list[tuple[str, _Result]] = []
    for start in range(0, len(candidates), CHUNK):
        chunk = candidates[start : start + CHUNK]
        try:
            done.extend(await _escalate_chunk(store, policy, chunk, now))
        except (StaleEscalation, IntegrityError) as exc:
            log.info("escalation of %s already advanced elsewhere (%s)", chunk[0], type(exc).__name__)
        except SQLAlchemyError as exc:
            if not is_permanent(exc):
                raise
            _cannot_advance(chunk[0], exc)
    for incident_id, result in done:
        if result.after is None:
            continue
        for event in result.events:
            log.info(
                "incident %s %s: %s (%s)",
                incident_id,
                event.type.value,
                event.reason,
                event.data.get("targets_text") or event.data.get("kind", ""),
            )
        if metrics is not None and not result.canary:
            metrics.observe(result.before, result.after, result.events)
        events.extend(result.events)
    return events
