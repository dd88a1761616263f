"""The processing steps, in order, over the incident store: classify → dedup → group → persist.

This is the one place the order of steps is written. Each step is a pure function from
``models`` (classification, :func:`models.incident.apply_alert`, …); this module only loads the
state they need, calls them and stages the results, all inside one store transaction, so the
incident change and the events describing it are committed together (the outbox).

Alert-driven changes take their time from the record (``received_at``): replaying a record after
a crash produces the very same incident ids, events and event ids. Within an alert, records are
ordered by their Kafka position when the caller passes it (``positions``), not by the receivers'
clocks. Commands use their request time and name the episode they act on. The timers run in record
time: :meth:`Pipeline.expire_quiet` and :meth:`Pipeline.release_windows` take a watermark of the
records applied (models/watermark.py, streams/record_time.py), never the wall clock.
Verification probe results (models/verification.py) are records too, applied like commands at
their ``checked_at``: an incident with a probe resolves only once a result in its quiet period
passed, so a replay of the same records reaches the same decisions.

The interface, for the worker and for tests that drive it directly::

    await pipeline.process_alerts(records, positions=None)   # positions: [RecordPosition | None]
    await pipeline.process_command(command)                  # -> CommandResult
    await pipeline.process_probe_result(result)              # -> CommandResult
    await pipeline.expire_quiet(watermark)                   # -> [IncidentEvent]
    await pipeline.release_windows(watermark)                # -> [IncidentEvent]
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from models.alert import AlertRecord, RecordPosition
from models.alertmanager import format_group_key
from models.audit import command_audit
from models.canary import is_canary
from models.classification import RuleSet
from models.escalation import (
    MANAGER_STEP,
    EscalationPolicy,
    escalate_by_hand,
    escalation_id,
    playbook_policy,
)
from models.events import EventType, IncidentEvent
from models.group_keys import stored_group_key
from models.incident import (
    AlertState,
    Command,
    Incident,
    LifecyclePolicy,
    Outcome,
    apply_alert,
    apply_command,
    expire_quiet_period,
    refusal,
    superseded,
    unchanged,
)
from models.maintenance import (
    MaintenanceWindow,
    covering_window,
    released_record,
    suppressed_state,
)
from models.runbooks import RunbookSet, TeamRunbooks
from models.teams import Teams
from models.timeline_notes import add_note
from models.verification import ProbeResult, ProbeSet, apply_probe_result
from store.alert_briefs import read_briefs
from store.escalations import EscalationTx
from store.incidents import IncidentStore, IncidentTx
from store.maintenance import MaintenanceStore
from streams.escalation import arm_opened
from streams.failures import apart
from streams.placement import elsewhere, home
from streams.quiet_scan import QuietScan
from streams.repeats import repeats

__all__ = ["CommandResult", "Pipeline", "regroup"]

_OPENING = (EventType.OPENED, EventType.REOPENED)


def regroup(record: AlertRecord, group_by: Sequence[str]) -> AlertRecord:
    """The record under its stored group key (:func:`models.group_keys.stored_group_key`): its
    groupKey, or one built from ``group_by`` labels, except for a canary alert (its own key, one
    group per round: grouped by ``alertname``, each round would reopen the last one's incident)."""
    key = record.group_key
    if group_by and not is_canary(record.labels):
        key = format_group_key({name: record.labels.get(name, "") for name in group_by})
    key = stored_group_key(key)
    # (A record sent under that key already, as by a route grouping the same way, is not copied.)
    return record if key == record.group_key else record.model_copy(update={"group_key": key})


def _still_held(previous: AlertState | None, window_id: str) -> bool:
    """True when the alert's latest state is firing and held by ``window_id``."""
    return previous is not None and previous.status == "firing" and previous.suppressed_by == window_id


async def _load(
    tx: IncidentTx,
    batch: Sequence[AlertRecord],
    where: Sequence[RecordPosition | None],
    maintenance: MaintenanceStore,
    policy: LifecyclePolicy | None,
) -> tuple[Sequence[MaintenanceWindow], dict[int, int], list[bool]]:
    """Lock the batch's groups and read, once for the batch, what its records are decided on:
    the maintenance windows over its time, the offsets already applied per partition, its
    alerts' brief states (streams/repeats.py: with ``policy``, which records are repeats the
    batch cannot change, returned last) and, for the other records only, their alerts' full
    states and their groups' incidents (and those of other groups they counted in, locked too)."""
    windows = await maintenance.overlapping(
        min(r.received_at for r in batch), max(r.received_at for r in batch), tx.connection
    )
    await tx.hold_groups(r.group_key for r in batch)
    applied = await tx.applied_offsets(p.partition for p in where if p is not None)
    briefs = await read_briefs(tx.connection, (r.fingerprint for r in batch))
    skip = repeats(batch, where, briefs, policy) if policy is not None else [False] * len(batch)
    rest = [r for r, repeat in zip(batch, skip, strict=True) if not repeat]
    await tx.lock_groups(r.group_key for r in rest)
    await tx.load_alerts(r.fingerprint for r in rest if r.fingerprint in briefs)
    await tx.lock_incidents(elsewhere(tx, rest))
    return windows, applied, skip


def _progress(
    batch: Sequence[AlertRecord],
    where: Sequence[RecordPosition | None],
    applied_at: datetime | None = None,
) -> dict[int, tuple[datetime, int]]:
    """Per alerts-topic partition, the newest ``received_at`` (not past ``applied_at``) and the
    offset after the last record of the batch (:meth:`store.incidents.IncidentTx.advance`)."""
    progress: dict[int, tuple[datetime, int]] = {}
    for original, position in zip(batch, where, strict=True):
        if position is not None:
            at, offset = original.received_at, position.offset + 1
            at = at if applied_at is None else min(at, applied_at)
            seen = progress.get(position.partition)
            if seen is not None:
                at, offset = max(seen[0], at), max(seen[1], offset)
            progress[position.partition] = (at, offset)
    return progress


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
    #: When set, an incident opened by an alert records the runbook its alert matches (its
    #: team's runbooks first: streams.runbooks.team_runbooks).
    runbooks: RunbookSet | TeamRunbooks | None = None
    #: Verification probes by service: an incident with one resolves only once it passed.
    probes: ProbeSet | None = None
    #: When set, an incident opened by an alert records the team its alert matches.
    teams: Teams | None = None
    #: Where the quiet timer's last page ended (a fair scan: streams/quiet_scan.py).
    quiet_scan: QuietScan = field(default_factory=QuietScan)
    #: The store's maintenance windows, made once: a batch's transaction reads those over its time.
    maintenance: MaintenanceStore = field(init=False)

    def __post_init__(self) -> None:
        self.maintenance = MaintenanceStore(self.store.engine)

    def _verify(self, incident: Incident | None) -> bool:
        """True when ``incident`` has a verification probe (its quiet period needs a pass)."""
        return (
            incident is not None
            and self.probes is not None
            and self.probes.for_incident(incident) is not None
        )

    async def process_alerts(
        self,
        records: Sequence[AlertRecord],
        positions: Sequence[RecordPosition | None] | None = None,
        *,
        applied_at: datetime | None = None,
    ) -> list[IncidentEvent]:
        """Apply a batch of alert records (in order) in one transaction; returns the new events.

        ``positions`` gives each record's place on the alerts topic (same length as ``records``;
        None, or a None entry, where unknown). Within an alert, records are ordered by offset,
        not by the receivers' clocks (:func:`models.incident.superseded`). ``applied_at``: the
        worker's clock, which no partition's progress passes (a record stamped in the future
        carried the watermark there for good) and on which escalations are armed."""
        where = list(positions) if positions is not None else [None] * len(records)
        if len(where) != len(records):
            raise ValueError(f"{len(records)} records but {len(where)} positions")
        return await self._apply(records, where, None, applied_at)

    async def _apply(
        self,
        records: Sequence[AlertRecord],
        where: Sequence[RecordPosition | None],
        releasing: str | None,
        applied_at: datetime | None = None,
    ) -> list[IncidentEvent]:
        """Apply records in one transaction; ``releasing``: the maintenance window whose held
        alerts these records release (each applies only if the alert is, under the lock, still
        firing and held by that window)."""
        batch = [regroup(r, self.group_by) for r in records]
        if not batch:
            return []
        # (A window's release is decided in full: each record applies only if still held.)
        policy = self.policy if releasing is None else None
        async with self.store.transaction() as tx:
            windows, applied, skip = await _load(tx, batch, where, self.maintenance, policy)
            events: list[IncidentEvent] = []
            for original, position, repeat in zip(batch, where, skip, strict=True):
                if repeat:
                    continue  # changes nothing (streams/repeats.py)
                if position is not None and position.offset < applied.get(position.partition, 0):
                    continue  # a replay: applied already, whatever the store holds since
                outcome = self._decide(tx, original, position, windows, releasing)
                if outcome is not None:
                    tx.stage(outcome)
                    events.extend(outcome.events)
            tx.advance(_progress(batch, where, applied_at))
            # Once each (one batch can open and reopen an incident: a second arming would insert
            # its escalation again), on the worker's clock, the escalation loop's, not a skewed
            # receiver's (ahead: every level fired at once; behind: at the loop's first tick).
            opened = list(dict.fromkeys(e.incident_id for e in events if e.type in _OPENING))
            if self.escalation is not None and opened:
                now = applied_at or max(r.received_at for r in batch)
                events.extend(await arm_opened(tx, self.escalation, opened, now))
        return events

    def _decide(
        self,
        tx: IncidentTx,
        original: AlertRecord,
        position: RecordPosition | None,
        windows: Sequence[MaintenanceWindow],
        releasing: str | None,
    ) -> Outcome | None:
        """What one record does, from the state loaded (and staged) in ``tx``; None: nothing.
        A repeat (:func:`models.incident.unchanged`) is decided before the record is classified:
        Alertmanager re-sends every firing group, and a repeat must cost next to nothing."""
        record, incident = home(tx, original, self.policy)
        previous = tx.alert(record.fingerprint)
        if releasing is not None and not _still_held(previous, releasing):
            return None  # resolved, or released, since the window's end was read
        if superseded(record, previous, position):
            return None  # (held or not: an older state must not replace a newer one)
        window = covering_window(record, windows, previous, incident, self.policy)
        if window is None and unchanged(
            incident, previous, record, self.policy, record.received_at, position
        ):
            return None
        cls = self.rules.classify(record.labels, record.annotations)
        if window is not None:
            held = previous is not None and previous.suppressed_by == window
            if held and previous is not None and previous.status == record.status:
                return None
            return Outcome(None, suppressed_state(record, cls, previous, window, position))
        return apply_alert(
            incident,
            previous,
            record,
            cls,
            self.policy,
            record.received_at,
            position,
            self.runbooks.for_record if self.runbooks is not None else None,
            self._verify(incident),
            self.teams.team_of if self.teams is not None else None,
        )

    async def process_command(self, command: Command) -> CommandResult:
        """Acknowledge, resolve or escalate to the manager; a command id already applied changes
        nothing."""
        async with self.store.transaction() as tx:
            if await tx.command_applied(command.command_id):
                return CommandResult(False, "command already applied")
            incident = await tx.lock_incident(command.incident_id)
            if incident is None:
                return CommandResult(False, f"no incident {command.incident_id}")
            await tx.record_command(
                command.command_id, command.incident_id, command.action, command.requested_at
            )
            if command.action == "escalate":
                return await self._escalate_by_hand(tx, incident, command)
            note = command.action == "note"
            outcome = (add_note if note else apply_command)(incident, command, command.requested_at)
            if not note and (refused := refusal(incident, command)) is not None:
                return CommandResult(False, refused)
            if outcome is None:
                return CommandResult(False, f"incident is already {incident.state.value}")
            tx.stage(outcome)
            await tx.audit(command_audit(command))  # committed with the change, or not at all
            return CommandResult(True, f"{command.action}d", tuple(outcome.events))

    async def process_probe_result(self, result: ProbeResult) -> CommandResult:
        """Apply one verification probe result (models/verification.py) at its ``checked_at``;
        a result id already applied changes nothing (results share the commands' idempotency
        log, as action ``probe``)."""
        async with self.store.transaction() as tx:
            if await tx.command_applied(result.result_id):
                return CommandResult(False, "probe result already applied")
            incident = await tx.lock_incident(result.incident_id)
            if incident is None:
                return CommandResult(False, f"no incident {result.incident_id}")
            await tx.record_command(result.result_id, result.incident_id, "probe", result.checked_at)
            outcome = apply_probe_result(incident, result, self.policy.quiet_period)
            if outcome is None:
                return CommandResult(False, "not in its quiet period, or nothing changes")
            tx.stage(outcome)
            return CommandResult(True, "passed" if result.ok else "failed", tuple(outcome.events))

    async def _escalate_by_hand(
        self, tx: IncidentTx, incident: Incident, command: Command
    ) -> CommandResult:
        """``escalate --to manager``: the ``escalated`` event and its audit entry, once per
        episode (a second press of the button, from anyone, pages nobody again). The manager is
        whom the incident's escalation snapshot names, else the policy's."""
        etx = EscalationTx(tx.connection)
        state = await etx.load(incident.id)
        policy = self.escalation or playbook_policy()
        targets = (
            state.snapshot.manager_targets
            if state is not None and state.snapshot.manager_targets
            else policy.manager_targets
        )
        episode = escalation_id(incident.id, incident.flaps)
        if refusal(incident, command) is None and await etx.fired(episode, MANAGER_STEP):
            return CommandResult(False, "the manager was escalated to already in this episode")
        applied = escalate_by_hand(incident, command, targets, command.requested_at)
        if isinstance(applied, str):
            return CommandResult(False, applied)
        outcome, firing = applied
        tx.stage(outcome)
        await etx.record(episode, incident.id, firing, outcome.events[0], command.requested_at)
        await etx.flush()
        return CommandResult(True, "escalated to the manager", tuple(outcome.events))

    async def release_windows(self, watermark: datetime) -> list[IncidentEvent]:
        """Apply again the still-firing alerts of every maintenance window that ended at or
        before ``watermark``.

        ``watermark`` is record time (:func:`models.watermark.watermark`): every record received
        before the window's end is applied first, so a held alert's resolution still in the
        backlog is not outrun by its release. Each held alert is checked again under its group's
        lock against its latest state (a resolution applied meanwhile, by this worker or another,
        wins); the released record arrives at the window's end and keeps the alert's stored Kafka
        position, so the alert's own later records still apply after it.
        """
        events: list[IncidentEvent] = []
        for window_id in await self.maintenance.due(watermark):
            release = partial(self._release, window_id, watermark)
            events.extend(await apart(f"the release of maintenance window {window_id}", release))
        return events

    async def _release(self, window_id: str, watermark: datetime) -> list[IncidentEvent]:
        windows, events = self.maintenance, []
        window, held = await windows.get(window_id), await windows.held(window_id)
        if held and window is not None:
            released = [released_record(a, window.ends_at) for a in held]
            events = await self._apply(released, [None] * len(released), window_id)
        await windows.mark_released(window_id, watermark)
        return events

    async def expire_quiet(self, watermark: datetime) -> list[IncidentEvent]:
        """Resolve the incidents whose alerts have all been resolved for the quiet period, in
        record time: ``watermark`` is the time up to which every alert record has been applied
        (:func:`models.watermark.watermark`), never the wall clock, so a renewed firing still in
        the backlog is applied before its incident can expire. It is also the resolution's time.
        """
        events: list[IncidentEvent] = []
        for incident_id in await self.quiet_scan.page(self.store, watermark - self.policy.quiet_period):
            expire = partial(self._expire, incident_id, watermark)
            events.extend(await apart(f"the quiet period of incident {incident_id}", expire))
        return events

    async def _expire(self, incident_id: str, watermark: datetime) -> list[IncidentEvent]:
        async with self.store.transaction() as tx:
            incident = await tx.lock_incident(incident_id)
            if incident is None:
                return []
            outcome = expire_quiet_period(incident, self.policy, watermark, self._verify(incident))
            if outcome is None:
                return []
            tx.stage(outcome)
            return list(outcome.events)
