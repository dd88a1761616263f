"""The processing steps, in order, over the incident store: classify → dedup → group → persist.

This is the one place the order of steps is written. Each step is a pure function from
``models`` (classification, :func:`models.incident.apply_alert`, …); this module only loads the
state they need, calls them and stages the results, all inside one store transaction, so the
incident change and the events describing it are committed together (the outbox).

Alert-driven changes take their time from the record (``received_at``): replaying a record after
a crash produces the very same incident ids, events and event ids. Commands use their request time;
only the quiet-period timer reads the injected clock.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from models.alert import AlertRecord
from models.alertmanager import format_group_key
from models.canary import is_canary
from models.classification import RuleSet
from models.escalation import EscalationPolicy
from models.events import EventType, IncidentEvent
from models.incident import (
    Command,
    Incident,
    LifecyclePolicy,
    Outcome,
    apply_alert,
    apply_command,
    expire_quiet_period,
    refusal,
    superseded,
)
from models.maintenance import covering_window, released_record, suppressed_state
from store.incidents import IncidentStore, IncidentTx
from store.maintenance import MaintenanceStore
from streams.escalation import arm_opened

__all__ = ["CommandResult", "Pipeline", "regroup"]

_OPENING = (EventType.OPENED, EventType.REOPENED)


def regroup(record: AlertRecord, group_by: Sequence[str]) -> AlertRecord:
    """Replace Alertmanager's groupKey by one built from ``group_by`` labels (when configured).

    A canary alert keeps its own (one group per round, :func:`models.canary.canary_group_key`):
    grouped by ``alertname``, every round would reopen the last one's incident."""
    if not group_by or is_canary(record.labels):
        return record
    key = format_group_key({name: record.labels.get(name, "") for name in group_by})
    return record.model_copy(update={"group_key": key})


def _firing_elsewhere(tx: IncidentTx, record: AlertRecord) -> str | None:
    """The incident this record's alert is firing in, when that is not its group's current one."""
    previous = tx.alert(record.fingerprint)
    if previous is None or previous.status != "firing" or previous.incident_id is None:
        return None
    current = tx.incidents_by_group.get(record.group_key)
    return None if current is not None and current.id == previous.incident_id else previous.incident_id


def _elsewhere(tx: IncidentTx, batch: Sequence[AlertRecord]) -> list[str]:
    """Incidents of other groups that alerts of ``batch`` are firing in (to lock as well)."""
    return sorted({i for r in batch if (i := _firing_elsewhere(tx, r)) is not None})


def _home(tx: IncidentTx, record: AlertRecord) -> tuple[AlertRecord, Incident | None]:
    """The record and the incident it applies to.

    An alert firing in an incident stays there whatever group key it is sent under (an
    Alertmanager route with ``continue: true`` sends one alert in two groups; a changed
    ``group_by`` regroups it): the record is taken as one of that incident's group, so a re-send
    is a duplicate and its resolution reaches the incident counting it. That holds after the
    incident was resolved by hand while the alert still fired, too: its group's own re-sends
    change nothing then, and neither may the other group's. Otherwise (or when that incident is
    no longer its group's latest) the record belongs to its group's current incident.
    """
    elsewhere = _firing_elsewhere(tx, record)
    if elsewhere is not None:
        home = tx.incident(elsewhere)  # locked by _elsewhere; None: not its group's latest
        if home is not None and tx.incidents_by_group.get(home.group_key) == home:
            return record.model_copy(update={"group_key": home.group_key}), home
    return record, tx.incidents_by_group[record.group_key]


@dataclass(frozen=True)
class CommandResult:
    """What became of a manual command."""

    applied: bool
    reason: str
    events: tuple[IncidentEvent, ...] = ()


@dataclass
class Pipeline:
    """Applies alert records, commands and time to the incident store."""

    store: IncidentStore
    rules: RuleSet
    policy: LifecyclePolicy
    group_by: tuple[str, ...] = ()
    #: When set, incidents opened by alerts start escalating in the same transaction.
    escalation: EscalationPolicy | None = None

    async def process_alerts(self, records: Sequence[AlertRecord]) -> list[IncidentEvent]:
        """Apply a batch of alert records (in order) in one transaction; returns the new events."""
        batch = [regroup(r, self.group_by) for r in records]
        if not batch:
            return []
        async with self.store.transaction() as tx:
            windows = await MaintenanceStore(self.store.engine).overlapping(
                min(r.received_at for r in batch), max(r.received_at for r in batch), tx.connection
            )
            await tx.lock_groups(r.group_key for r in batch)
            await tx.load_alerts(r.fingerprint for r in batch)
            await tx.lock_incidents(_elsewhere(tx, batch))
            events: list[IncidentEvent] = []
            for original in batch:
                record, incident = _home(tx, original)
                previous = tx.alert(record.fingerprint)
                if superseded(record, previous):
                    continue  # (held or not: an older state must not replace a newer one)
                cls = self.rules.classify(record.labels, record.annotations)
                outcome: Outcome | None
                window = covering_window(record, windows, previous, incident)
                if window is not None:
                    held = previous is not None and previous.suppressed_by == window
                    same = held and previous is not None and previous.status == record.status
                    outcome = (
                        None if same else Outcome(None, suppressed_state(record, cls, previous, window))
                    )
                else:
                    outcome = apply_alert(
                        incident,
                        previous,
                        record,
                        cls,
                        self.policy,
                        record.received_at,
                    )
                if outcome is not None:
                    tx.stage(outcome)
                    events.extend(outcome.events)
            # Once each: with no quiet period one batch can open and reopen an incident, and a
            # second arming in the transaction would insert its escalation again.
            opened = list(dict.fromkeys(e.incident_id for e in events if e.type in _OPENING))
            if self.escalation is not None and opened:
                now = max(r.received_at for r in batch)
                events.extend(await arm_opened(tx, self.escalation, opened, now))
        return events

    async def process_command(self, command: Command) -> CommandResult:
        """Acknowledge or resolve; a command id already applied changes nothing."""
        async with self.store.transaction() as tx:
            if await tx.command_applied(command.command_id):
                return CommandResult(False, "command already applied")
            incident = await tx.lock_incident(command.incident_id)
            if incident is None:
                return CommandResult(False, f"no incident {command.incident_id}")
            outcome = apply_command(incident, command, command.requested_at)
            await tx.record_command(
                command.command_id, command.incident_id, command.action, command.requested_at
            )
            if (refused := refusal(incident, command)) is not None:
                return CommandResult(False, refused)
            if outcome is None:
                return CommandResult(False, f"incident is already {incident.state.value}")
            tx.stage(outcome)
            return CommandResult(True, f"{command.action}d", tuple(outcome.events))

    async def release_windows(self, now: datetime) -> list[IncidentEvent]:
        """Apply again the still-firing alerts of every maintenance window that has ended."""
        windows = MaintenanceStore(self.store.engine)
        events: list[IncidentEvent] = []
        for window_id in await windows.due(now):
            held = await windows.held(window_id)
            if held:
                events.extend(await self.process_alerts([released_record(a, now) for a in held]))
            await windows.mark_released(window_id, now)
        return events

    async def expire_quiet(self, now: datetime) -> list[IncidentEvent]:
        """Resolve the incidents whose alerts have all been resolved for the quiet period."""
        events: list[IncidentEvent] = []
        for incident_id in await self.store.quiet_incidents(now - self.policy.quiet_period):
            async with self.store.transaction() as tx:
                incident = await tx.lock_incident(incident_id)
                if incident is None:
                    continue
                outcome = expire_quiet_period(incident, self.policy, now)
                if outcome is not None:
                    tx.stage(outcome)
                    events.extend(outcome.events)
        return events
