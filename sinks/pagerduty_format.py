"""Incident events → PagerDuty Events API v2 calls: a pure mapping, tested in milliseconds.

One PagerDuty alert per incident, ``dedup_key`` = incident id, so PagerDuty itself deduplicates a
repeated trigger. Which events make which call:

=====================  =====================================================================
opened, reopened       trigger (when the incident's severity pages)
severity_changed       trigger carrying the new severity (when it now pages)
acknowledged           acknowledge, unless the acknowledgement came from PagerDuty itself
resolved               resolve
escalated              trigger, on the routing key of each PagerDuty target of the level that
                       has one (``SEVFLOW_ESCALATION_PAGERDUTY_ROUTING_KEYS``), dedup_key
                       ``<incident>/escalation/<target>``; acknowledged (from anywhere,
                       PagerDuty included) / resolved then close those alerts too
                       (:func:`escalation_calls`, :func:`escalation_followups`)
anything else          nothing (alert churn is not paged)
=====================  =====================================================================

The dedup_key forms (the incident's, an escalation level's, a storm digest's) are built by
:mod:`models.pagerduty_keys`, which the receiver's PagerDuty webhook reads them back with.

Acknowledge and resolve are sent only for incidents that were paged (``paged``), since PagerDuty
drops them for unknown keys anyway. Every trigger is fitted to the Events API's limits
(:mod:`sinks.limits`: 512 KB per event, summary ≤ 1024 chars, dedup_key ≤ 255) by :func:`fit`:
PagerDuty refuses a larger event with 400 for good, and a SEV1 whose labels are large must page.
"""

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from models.escalation import escalation_targets
from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState
from models.fitting import capped, largest, longest, widest
from models.pagerduty_keys import escalation_key, incident_key, storm_key
from models.severity import Severity
from models.web_links import web_url
from sinks.limits import (
    PAGERDUTY_DEDUP_KEY_MAX,
    PAGERDUTY_EVENT_MAX_BYTES,
    PAGERDUTY_FIELD_MAX,
    PAGERDUTY_LINK_HREF_MAX,
    PAGERDUTY_SUMMARY_MAX,
    clip,
)

__all__ = [
    "CANARY_SEVERITY",
    "PAGED_MATTERS",
    "PAGERDUTY_SEVERITY",
    "PagerDutyCall",
    "canary_calls",
    "digest_call",
    "escalation_calls",
    "escalation_followups",
    "event_size",
    "fit",
    "pagerduty_calls",
]

PAGERDUTY_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}
SUMMARY_MAX = PAGERDUTY_SUMMARY_MAX
DEDUP_KEY_MAX = PAGERDUTY_DEDUP_KEY_MAX
#: The shortest a detail's text is cut to before whole entries are left out instead.
_DETAIL_MIN = 64

Action = Literal["trigger", "acknowledge", "resolve"]


@dataclass(frozen=True)
class PagerDutyCall:
    """One Events API v2 request; ``payload`` holds the optional fields beyond summary/source."""

    action: Action
    dedup_key: str
    summary: str = ""
    source: str = ""
    severity: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)


def _see(where: str) -> str:
    return f"… (truncated, see {where})"


def event_size(call: PagerDutyCall) -> int:
    """The bytes of the JSON event sent for ``call``, at most: the ``pagerduty`` client sends
    compact UTF-8 with the 32-character routing key; this counts ASCII escapes (``\\uXXXX``, never
    fewer bytes than UTF-8) and spaced separators, so whatever a client's encoding, no more."""
    payload = {"summary": call.summary, "source": call.source, "severity": call.severity}
    event: dict[str, Any] = {
        "event_action": call.action,
        "payload": {**payload, **call.payload},
        "dedup_key": call.dedup_key,
        "routing_key": "R" * 32,
    }
    if call.links:
        event["links"] = call.links
    return len(json.dumps(event))


def fit(call: PagerDutyCall, where: str) -> PagerDutyCall:
    """``call`` within PagerDuty's limits (:mod:`sinks.limits`), cut visibly; ``where`` names
    where the whole incident is shown (``sevflow incidents show <id>``).

    The summary and the short fields are cut to their lengths; links too long to follow are left
    out. If the event is still over 512 KB, ``custom_details`` gives way, fairly: every text in it
    is cut to the one length that lets the event fit (each ending "… (truncated)"), and when even
    short texts do not fit, entries past the first few of each list / object are left out and
    counted; a ``truncated`` detail says so and where the whole is."""
    if call.action != "trigger":
        return call
    payload = dict(call.payload)
    for name in ("component", "group", "class"):
        if isinstance(payload.get(name), str):
            payload[name] = clip(payload[name], PAGERDUTY_FIELD_MAX)
    links = [
        {**link, **({"text": clip(link["text"], PAGERDUTY_FIELD_MAX)} if "text" in link else {})}
        for link in call.links
        if len(link.get("href", "")) <= PAGERDUTY_LINK_HREF_MAX
    ]
    call = replace(
        call,
        dedup_key=call.dedup_key[:DEDUP_KEY_MAX],
        summary=clip(call.summary, SUMMARY_MAX, _see(where)),
        source=clip(call.source.strip() or "sevflow", PAGERDUTY_FIELD_MAX),
        payload=payload,
        links=links,
    )
    if event_size(call) <= PAGERDUTY_EVENT_MAX_BYTES:
        return call
    details = payload.get("custom_details")
    note = f"Details shortened to fit PagerDuty's 512 KB event limit; all of them: {where}"

    def with_details(value: Any) -> PagerDutyCall:
        return replace(call, payload={**payload, "custom_details": value})

    def shortened(cap: int, keep: int | None = None) -> PagerDutyCall:
        capped_details = capped(details, cap, keep, clip)
        if isinstance(capped_details, dict):
            return with_details({"truncated": note, **capped_details})
        return with_details({"truncated": note, "details": capped_details})

    def fits(candidate: PagerDutyCall) -> bool:
        return event_size(candidate) <= PAGERDUTY_EVENT_MAX_BYTES

    cap = largest(_DETAIL_MIN, max(longest(details), _DETAIL_MIN), lambda n: fits(shortened(n)))
    if cap is not None:
        return shortened(cap)
    keep = largest(0, widest(details), lambda n: fits(shortened(_DETAIL_MIN, n)))
    if keep is not None:
        return shortened(_DETAIL_MIN, keep)
    return with_details({"truncated": note})


def _links(incident: IncidentSnapshot, event: IncidentEvent) -> list[dict[str, str]]:
    """The event's ``links``: only http(s) URLs (models.web_links), since whoever posts alerts
    writes them and a responder clicks them in PagerDuty; anything else is left out (the
    console's incident page shows it as text)."""
    runbook = incident.runbook
    generator = (event.alert.generator_url if event.alert else None) or incident.generator_url
    candidates = [
        (runbook.link if runbook is not None else None, f"Runbook: {runbook.title}" if runbook else ""),
        (incident.runbook_url, "Runbook"),
        (generator, "Source (generatorURL)"),
        (incident.external_url, "Alertmanager"),
    ]
    return [{"href": href, "text": text} for url, text in candidates if (href := web_url(url))]


def trigger_call(event: IncidentEvent) -> PagerDutyCall:
    incident = event.incident
    labels = event.alert.labels if event.alert else {}
    service = _text(*incident.services[:1])
    source = _text(labels.get("instance"), service) or "sevflow"
    payload: dict[str, Any] = {
        "timestamp": incident.opened_at.isoformat(),
        "class": _text(labels.get("alertname"), event.alert.rule if event.alert else None)
        or incident.slug,
        "custom_details": {
            "incident_id": incident.id,
            "severity": str(incident.severity),
            "state": str(incident.state),
            "impact": incident.impact or "not yet assessed",
            "services": ", ".join(incident.services) or "unknown",
            "alerts_firing": incident.alerts_firing,
            "alerts_total": incident.alerts_total,
            "group_key": incident.group_key,
            "reason": event.reason or "",
            "labels": labels,
        },
    }
    if incident.runbook is not None:
        # The runbook matched when the incident opened, its commands filled: readable in
        # PagerDuty's alert details (fit() shortens it, visibly, like any detail).
        payload["custom_details"]["runbook"] = f"{incident.runbook.title}\n\n{incident.runbook.text}"
    if service:
        payload["component"] = service
    group = _text(labels.get("namespace"), labels.get("cluster"), labels.get("job"))
    if group:
        payload["group"] = group
    call = PagerDutyCall(
        action="trigger",
        dedup_key=incident_key(incident.id),
        summary=f"[{incident.severity}] {incident.title}",
        source=source,
        severity=PAGERDUTY_SEVERITY[incident.severity],
        payload=payload,
        links=_links(incident, event),
    )
    return fit(call, _where(incident.id))


def _text(*candidates: str | None) -> str | None:
    """The first candidate with more than blanks, stripped: PagerDuty refuses a blank source
    ("'payload.source' is missing or blank", 400, which no retry cures), and a label of spaces
    is no better a component, group or class."""
    for candidate in candidates:
        if candidate and (text := candidate.strip()):
            return text
    return None


def _where(incident_id: str) -> str:
    return f"sevflow incidents show {incident_id}"


#: The event types whose calls depend on ``paged`` (:func:`pagerduty_calls`): for any other, the
#: calls worked out before the delivery log is read are the ones to send (a trigger is fitted
#: once, not again after the read).
PAGED_MATTERS = frozenset({EventType.ACKNOWLEDGED, EventType.RESOLVED})


def pagerduty_calls(
    event: IncidentEvent, *, paged: bool, severities: frozenset[Severity]
) -> list[PagerDutyCall]:
    """The calls one event needs. ``paged``: a trigger for this incident was already delivered
    (it matters only for :data:`PAGED_MATTERS`)."""
    pages = event.incident.severity in severities
    key = incident_key(event.incident_id)
    match event.type:
        case EventType.OPENED | EventType.REOPENED | EventType.SEVERITY_CHANGED if pages:
            if event.incident.state is IncidentState.ACKNOWLEDGED:
                # Acknowledged before it paged (a severity raised into the paging ones after
                # the ack, which paged nobody then): page it, and say it is being worked on.
                return [trigger_call(event), PagerDutyCall(action="acknowledge", dedup_key=key)]
            return [trigger_call(event)]
        case EventType.ACKNOWLEDGED if paged and not _acknowledged_there(event, key):
            return [PagerDutyCall(action="acknowledge", dedup_key=key)]
        case EventType.RESOLVED if paged:
            return [PagerDutyCall(action="resolve", dedup_key=key)]
    return []


#: PagerDuty severity of the canary's alert: ``info`` (low urgency under PagerDuty's default
#: "based on alert severity" urgency rule), whatever the incident's SEV.
CANARY_SEVERITY = "info"


def canary_calls(event: IncidentEvent, *, paged: bool) -> list[PagerDutyCall]:
    """The calls one event of a canary incident needs: as for any incident whatever its severity
    (``SEVFLOW_PAGERDUTY_SEVERITIES`` does not apply), each trigger at :data:`CANARY_SEVERITY`."""
    calls = pagerduty_calls(event, paged=paged, severities=frozenset(Severity))
    return [replace(c, severity=CANARY_SEVERITY) if c.action == "trigger" else c for c in calls]


def _acknowledged_there(event: IncidentEvent, key: str) -> bool:
    """True when the acknowledgement was made in PagerDuty on the incident's own alert, which
    needs no echo. One made there on an escalation level's page (the secondary answered) leaves
    the own alert triggered, and PagerDuty paging the primary, unless sevflow acknowledges it.
    An event without ``pagerduty_alert`` (written before it was recorded) counts as the own."""
    return event.actor.via == "pagerduty" and event.data.get("pagerduty_alert", key) == key


def digest_call(
    storm_id: str, entries: list[IncidentSnapshot], since: str, total: int | None = None
) -> PagerDutyCall:
    """One alert summarising the SEV3/SEV4 incidents opened during an alert storm; ``total``
    counts those of earlier batches too."""
    worst = Severity.most_severe(*(e.severity for e in entries))
    titles = [f"[{e.severity}] {e.title} ({e.id})" for e in entries]
    call = PagerDutyCall(
        action="trigger",
        dedup_key=storm_key(storm_id),
        summary=f"Alert storm: {total or len(entries)} lower-severity incidents opened since {since}",
        source="sevflow",
        severity=PAGERDUTY_SEVERITY[worst],
        payload={"class": "alert storm", "custom_details": {"incidents": titles[:200]}},
    )
    return fit(call, "sevflow incidents list")


def escalation_calls(event: IncidentEvent, routable: Collection[str]) -> list[tuple[str, PagerDutyCall]]:
    """(target, trigger) for each PagerDuty target of an ``escalated`` event that has a routing
    key. A target without one is the incident's own service (the primary on-call, paged by the
    incident's alert): it is left alone, except by a level that pages ``again``, which opens a new
    alert there (target ``""`` in the result: the incident's own routing key). A level asked for
    ``by_hand`` pages nobody."""
    if event.type is not EventType.ESCALATED or event.data.get("by_hand"):
        return []
    level = event.data.get("level", "?")
    cycle = int(event.data["cycle"]) if event.data.get("cycle", "").isdecimal() else 0
    again = bool(event.data.get("again"))
    base = trigger_call(event)
    calls: list[tuple[str, PagerDutyCall]] = []
    for target in escalation_targets(event.data):
        if target.kind == "pagerduty" and (target.to in routable or again):
            summary = f"Escalated to {target.label or target.to} (level {level}): {base.summary}"
            calls.append(
                (
                    target.to,
                    fit(
                        replace(
                            base,
                            dedup_key=escalation_key(event.incident_id, target.to, cycle, again=again),
                            summary=summary,
                        ),
                        _where(event.incident_id),
                    ),
                )
            )
    return calls


def escalation_followups(
    event: IncidentEvent, paged: Mapping[str, str]
) -> list[tuple[str, PagerDutyCall]]:
    """Acknowledge / resolve the escalation alerts opened so far; ``paged`` maps each one's
    reference (``secondary``, ``secondary/repeat1``) to its dedup_key.

    Whoever acknowledged, PagerDuty included: an acknowledgement there is of one alert (the
    incident's own, or one level's page), and leaves the others paging their on-call.
    """
    if event.type is EventType.ACKNOWLEDGED:
        action: Action = "acknowledge"
    elif event.type is EventType.RESOLVED:
        action = "resolve"
    else:
        return []
    return [(ref, PagerDutyCall(action=action, dedup_key=paged[ref])) for ref in sorted(paged)]
