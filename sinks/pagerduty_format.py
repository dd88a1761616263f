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

Acknowledge and resolve are sent only for incidents that were paged (``paged``), since PagerDuty
drops them for unknown keys anyway. Limits come from the Events API v2 reference
(developer.pagerduty.com, "Send an Alert Event"): summary ≤ 1024 chars, dedup_key ≤ 255.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from models.escalation import escalation_targets
from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState
from models.severity import Severity

__all__ = [
    "PAGERDUTY_SEVERITY",
    "PagerDutyCall",
    "digest_call",
    "escalation_calls",
    "escalation_followups",
    "pagerduty_calls",
    "storm_key",
]

PAGERDUTY_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255

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


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _links(incident: IncidentSnapshot, event: IncidentEvent) -> list[dict[str, str]]:
    links = []
    if incident.runbook_url:
        links.append({"href": incident.runbook_url, "text": "Runbook"})
    generator = (event.alert.generator_url if event.alert else None) or incident.generator_url
    if generator:
        links.append({"href": generator, "text": "Source (generatorURL)"})
    if incident.external_url:
        links.append({"href": incident.external_url, "text": "Alertmanager"})
    return links


def trigger_call(event: IncidentEvent) -> PagerDutyCall:
    incident = event.incident
    labels = event.alert.labels if event.alert else {}
    source = labels.get("instance") or (incident.services[0] if incident.services else "sevflow")
    payload: dict[str, Any] = {
        "timestamp": incident.opened_at.isoformat(),
        "class": labels.get("alertname") or (event.alert.rule if event.alert else incident.slug),
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
    if incident.services:
        payload["component"] = incident.services[0]
    group = labels.get("namespace") or labels.get("cluster") or labels.get("job")
    if group:
        payload["group"] = group
    return PagerDutyCall(
        action="trigger",
        dedup_key=incident.id[:DEDUP_KEY_MAX],
        summary=_truncate(f"[{incident.severity}] {incident.title}", SUMMARY_MAX),
        source=source,
        severity=PAGERDUTY_SEVERITY[incident.severity],
        payload=payload,
        links=_links(incident, event),
    )


def pagerduty_calls(
    event: IncidentEvent, *, paged: bool, severities: frozenset[Severity]
) -> list[PagerDutyCall]:
    """The calls one event needs. ``paged``: a trigger for this incident was already delivered."""
    pages = event.incident.severity in severities
    key = event.incident_id[:DEDUP_KEY_MAX]
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
    return PagerDutyCall(
        action="trigger",
        dedup_key=storm_key(storm_id),
        summary=_truncate(
            f"Alert storm: {total or len(entries)} lower-severity incidents opened since {since}",
            SUMMARY_MAX,
        ),
        source="sevflow",
        severity=PAGERDUTY_SEVERITY[worst],
        payload={"class": "alert storm", "custom_details": {"incidents": titles[:200]}},
    )


def storm_key(storm_id: str) -> str:
    """The dedup_key of a storm's digest alert."""
    return f"sevflow-storm-{storm_id}"[:DEDUP_KEY_MAX]


def escalation_key(incident_id: str, target: str, cycle: int = 0) -> str:
    """The dedup_key of the alert an escalation opens on ``target``'s service; a repeat of the
    path (``cycle`` ≥ 1) opens a new alert, since PagerDuty folds a trigger into an open alert of
    the same key without notifying anyone again."""
    suffix = f"/repeat{cycle}" if cycle else ""
    return f"{incident_id}/escalation/{target}{suffix}"[:DEDUP_KEY_MAX]


def escalation_calls(event: IncidentEvent, routable: Collection[str]) -> list[tuple[str, PagerDutyCall]]:
    """(target, trigger) for each PagerDuty target of an ``escalated`` event that has a routing
    key; targets without one (the primary on-call is the incident's own alert) are left alone."""
    if event.type is not EventType.ESCALATED:
        return []
    level = event.data.get("level", "?")
    cycle = int(event.data["cycle"]) if event.data.get("cycle", "").isdecimal() else 0
    base = trigger_call(event)
    calls: list[tuple[str, PagerDutyCall]] = []
    for target in escalation_targets(event.data):
        if target.kind == "pagerduty" and target.to in routable:
            summary = f"Escalated to {target.label or target.to} (level {level}): {base.summary}"
            calls.append(
                (
                    target.to,
                    replace(
                        base,
                        dedup_key=escalation_key(event.incident_id, target.to, cycle),
                        summary=_truncate(summary, SUMMARY_MAX),
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
