"""The times of an incident that response analytics needs, and how its events give them.

:class:`IncidentTimes` holds the few instants of one incident the figures are computed from
(:mod:`analytics.figures`); :func:`times_of` reads them from an incident's events (the
``incident-events`` topic and the incident store both build them there), :func:`rebuild_times`
from a whole topic's events in any order and with repeats. The definitions (episode, response,
time to acknowledge / resolve) are in :mod:`analytics.figures`' docstring.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState
from models.severity import Severity

__all__ = [
    "INCOMPLETE",
    "RESPONSE_TYPES",
    "Episode",
    "IncidentTimes",
    "RebuiltTimes",
    "acknowledged_at_of",
    "rebuild_times",
    "resolved_at_of",
    "times_from_events",
    "times_of",
]


_ZERO = timedelta(0)


@dataclass(frozen=True)
class Episode:
    """A stretch of an incident that needs a response, and its response."""

    started_at: datetime
    #: The first acknowledgement or resolution after ``started_at``; None while unanswered.
    responded_at: datetime | None = None
    #: The severity in effect at the response (the responding event's snapshot); None while
    #: unanswered, when the incident's latest severity applies.
    severity: Severity | None = None


@dataclass(frozen=True)
class IncidentTimes:
    """What response analytics needs of one incident."""

    incident_id: str
    severity: Severity
    state: IncidentState
    opened_at: datetime
    first_acknowledged_at: datetime | None = None
    first_resolved_at: datetime | None = None
    #: Set only when the incident is resolved now (its last resolution).
    resolved_at: datetime | None = None
    #: The episodes the SLA judges (see :func:`times_of`); empty: one episode from ``opened_at``
    #: to :attr:`responded_at`, judged by ``severity``.
    episodes: tuple[Episode, ...] = ()
    #: The start of the episode the first acknowledgement belongs to (None: ``opened_at``).
    acknowledged_episode_start: datetime | None = None
    #: Opened by sevflow's end-to-end canary (models.canary): no one responds to it, so a
    #: report leaves it out.
    canary: bool = False
    #: The team that owns the incident (models.teams): ``sevflow report --team``.
    team: str = "default"

    # Never below zero: an incident opened by a receiver whose clock runs ahead of the one that
    # took the acknowledgement would count a negative time, pulling the mean below the truth.
    @property
    def time_to_acknowledge(self) -> timedelta | None:
        if self.first_acknowledged_at is None:
            return None
        start = self.acknowledged_episode_start or self.opened_at
        return max(self.first_acknowledged_at - start, _ZERO)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return None if self.resolved_at is None else max(self.resolved_at - self.opened_at, _ZERO)

    @property
    def responded_at(self) -> datetime | None:
        """The first acknowledgement, or the first resolution when that came first."""
        moments = [m for m in (self.first_acknowledged_at, self.first_resolved_at) if m is not None]
        return min(moments) if moments else None

    @property
    def response_episodes(self) -> tuple[Episode, ...]:
        """:attr:`episodes`, or the single episode the other fields describe."""
        return self.episodes or (Episode(self.opened_at, self.responded_at),)


def _in_window(opened_at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or opened_at >= since) and (until is None or opened_at < until)


#: The ``skipped`` reason of incidents whose events do not run 1, 2, … without a hole.
INCOMPLETE = "incidents with missing events"


@dataclass(frozen=True)
class RebuiltTimes:
    """The times rebuilt from events, and the incidents left out because events are missing."""

    times: list[IncidentTimes]
    #: Ids of incidents (opened in the window) whose events do not start at sequence 1 or have
    #: a hole: retention deleted the start, or the reader missed some. Their times would be wrong
    #: (no opening, no acknowledgement), so they are not guessed at.
    incomplete: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> dict[str, int]:
        """For :func:`compute_report`'s ``skipped``: the incomplete incidents, if any."""
        return {INCOMPLETE: len(self.incomplete)} if self.incomplete else {}


def rebuild_times(
    events: Iterable[IncidentEvent],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    passed_over: Collection[tuple[str, int]] = (),
    unread: Collection[str] = (),
) -> RebuiltTimes:
    """Rebuild every incident's times from its events, in any order and with repeats.

    Events are deduplicated on ``event_id`` (delivery is at-least-once) and ordered by
    ``sequence``; the latest snapshot gives severity, state and the current resolution. Only
    incidents opened in ``[since, until)`` are returned, and only those whose sequences run
    1, 2, … without a hole (the others are listed in ``incomplete``). ``passed_over``: the
    ``(incident_id, sequence)`` of events the reader skipped for their type or schema version,
    which hold their places all the same: one event of a type this version does not know left
    a hole, and its whole incident out of the report. ``unread``: incidents one of whose
    responses the reader skipped (a newer schema's acknowledgement): left out, as incomplete.
    """
    per_incident: dict[str, dict[int, IncidentEvent]] = {}
    for event in events:
        per_incident.setdefault(event.incident_id, {}).setdefault(event.sequence, event)
    skipped_at: dict[str, set[int]] = {}
    for incident_id, sequence in passed_over:
        skipped_at.setdefault(incident_id, set()).add(sequence)
    result = []
    incomplete = []
    for incident_id, by_sequence in per_incident.items():
        sequences = sorted(by_sequence)
        ordered = [by_sequence[s] for s in sequences]
        latest = ordered[-1].incident
        if not _in_window(latest.opened_at, since, until):
            continue
        places = sorted(set(sequences) | skipped_at.get(incident_id, set()))
        if incident_id in unread or places != list(range(1, len(places) + 1)):
            incomplete.append(incident_id)
            continue
        result.append(times_of(latest, ordered))
    return RebuiltTimes(sorted(result, key=lambda t: t.incident_id), sorted(incomplete))


def times_from_events(
    events: Iterable[IncidentEvent],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[IncidentTimes]:
    """:func:`rebuild_times`' times alone (incidents with missing events left out)."""
    return rebuild_times(events, since=since, until=until).times


#: The event types :func:`times_of` reads; every other type may be left out of its ``events``.
RESPONSE_TYPES = (EventType.ACKNOWLEDGED, EventType.RESOLVED, EventType.REOPENED)


def times_of(incident: IncidentSnapshot, events: Iterable[IncidentEvent]) -> IncidentTimes:
    """The times of ``incident`` (its latest snapshot) from its events in ``sequence`` order, of
    which only the :data:`RESPONSE_TYPES` matter: both sources build their times here.

    Episodes start at ``opened_at`` and at each ``reopened`` event's ``occurred_at`` (the
    snapshot carries no reopening time; the event is the reopening); each one's response is the
    first ``acknowledged`` / ``resolved`` event after it started."""
    first_ack: IncidentEvent | None = None
    first_resolve: IncidentEvent | None = None
    ack_episode_start: datetime | None = None
    episodes: list[Episode] = []
    started_at: datetime = incident.opened_at
    answered = False
    for event in events:
        if event.type is EventType.REOPENED:
            if not answered:  # a reopening without a response first: that episode went unanswered
                episodes.append(Episode(started_at))
            started_at, answered = event.occurred_at, False
            continue
        if event.type is EventType.ACKNOWLEDGED:
            at = acknowledged_at_of(event)
            if first_ack is None:
                first_ack, ack_episode_start = event, started_at
        elif event.type is EventType.RESOLVED:
            first_resolve = first_resolve or event
            at = resolved_at_of(event)
        else:
            continue
        if not answered:
            episodes.append(Episode(started_at, at, event.incident.severity))
            answered = True
    if not answered:
        episodes.append(Episode(started_at))
    return IncidentTimes(
        incident_id=incident.id,
        severity=incident.severity,
        state=incident.state,
        opened_at=incident.opened_at,
        first_acknowledged_at=acknowledged_at_of(first_ack),
        first_resolved_at=resolved_at_of(first_resolve),
        resolved_at=incident.resolved_at if incident.state is IncidentState.RESOLVED else None,
        episodes=tuple(episodes),
        acknowledged_episode_start=ack_episode_start,
        canary=incident.canary,
        team=incident.team,
    )


def acknowledged_at_of(event: IncidentEvent | None) -> datetime | None:
    """When an ``acknowledged`` event acknowledged (its snapshot's time, else when it happened)."""
    if event is None:
        return None
    return event.incident.acknowledged_at or event.occurred_at


def resolved_at_of(event: IncidentEvent | None) -> datetime | None:
    """When a ``resolved`` event resolved (its snapshot's time, else when it happened)."""
    if event is None:
        return None
    return event.incident.resolved_at or event.occurred_at
