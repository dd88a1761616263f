"""``sevflow explain``: which severity rule an alert matches, why, which incident it joins, and
which verification probe an incident it opens would be verified by."""

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from models.alertmanager import format_group_key
from models.clock import utc_now
from models.fingerprint import fingerprint
from models.group_keys import stored_group_key
from models.incident import SERVICE_LABELS
from models.settings import Settings
from sevflow.teams import load_teams
from store.db import async_engine
from store.incident_reads import incident_reads
from store.incidents import IncidentStore
from store.maintenance import MaintenanceStore

__all__ = ["explain", "parse_pairs"]


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` → ``{"a": "1", "b": "2"}``; raises ValueError naming a bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"{what} must be name=value, got {pair!r}")
        out[name] = value
    return out


async def _incident_for(
    settings: Settings,
    labels: dict[str, str],
    annotations: dict[str, str],
    group_key: str | None,
    now: datetime,
) -> list[str]:
    engine = async_engine(settings.sqlalchemy_url())
    fp = fingerprint(labels)
    lines: list[str] = []
    try:
        windows = await MaintenanceStore(engine).overlapping(now, now)
        window = next((w for w in windows if w.covers(labels, annotations, now)), None)
        if window is not None:
            comment = f" ({window.comment})" if window.comment else ""
            lines.append(
                f"maintenance: held by window {window.id}{comment} until "
                f"{window.ends_at:%Y-%m-%d %H:%M} UTC: an alert that starts firing now pages "
                "nobody and joins an incident only when the window ends"
            )
        async with incident_reads(engine) as reads:
            if group_key is None:
                stored = await reads.group_of_alert(fp)
                if stored is None:
                    return [
                        *lines,
                        "group:     decided by Alertmanager's groupKey (its route's group_by); "
                        "pass --group-key or set SEVFLOW_GROUP_BY",
                    ]
                group_key = stored
            group_key = stored_group_key(group_key)  # (as the worker stores it)
            incident_id = await reads.incident_of_group(group_key)
        lines.append(f"group:     {group_key}")
        incident = await IncidentStore(engine).get(incident_id) if incident_id else None
    finally:
        await engine.dispose()
    policy = settings.lifecycle_policy()
    if incident is None:
        lines.append("incident:  none yet: a firing alert would open a new incident")
    elif incident.is_open:
        lines.append(
            f"incident:  would join {incident.id} ({incident.state.value}, {incident.severity.value}, "
            f'"{incident.title}", opened {incident.opened_at:%Y-%m-%d %H:%M} UTC)'
        )
    else:
        lines.append(
            f"incident:  {incident.id} resolved at {incident.resolved_at:%Y-%m-%d %H:%M} UTC; "
            f"a firing alert reopens it within {policy.reopen_window} of that, else opens a new one"
        )
    return lines


def _probe_lines(settings: Settings, labels: dict[str, str], team: str, severity: str) -> list[str]:
    """The probe an incident this alert opens would be verified by (models/verification.py)."""
    from streams.probes import load_probes

    probes = load_probes(settings.verify_probes, settings.verify_file, settings.rules_file)
    if not probes:
        return []
    service = next((labels[n] for n in SERVICE_LABELS if labels.get(n)), None)
    choice = probes.choose([service] if service else [], team, severity)
    lines = [
        f"  skipped  probe {selector}: {failing} does not match" for selector, failing in choice.tried
    ]
    if choice.probe is None:
        return [
            "verified:  by no probe (service, team and severity match none): the quiet period "
            "alone resolves",
            *lines,
        ]
    return [f"verified:  by probe {choice.probe.name} ({choice.probe.selector})", *lines]


def explain(
    settings: Settings,
    labels: dict[str, str],
    annotations: dict[str, str],
    group_key: str | None,
    *,
    now: datetime | None = None,
) -> str:
    """A readable explanation of how sevflow would handle an alert with these labels arriving
    at ``now`` (the current time when None)."""
    # The worker's loaders, imported when used: `sevflow teams` imports this module for
    # parse_pairs and must not load the worker's packages (nor Kafka's client) for it.
    from streams.rules import load_rules

    at = now if now is not None else utc_now()
    rules = load_rules(settings.rules_file)
    explanation = rules.explain(labels, annotations)
    cls = explanation.classification
    fp = fingerprint(labels)
    lines = [f"alert:     {format_group_key(labels).removeprefix('{}:')} (fingerprint {fp})"]
    rule = explanation.matched
    given = rule.severity if rule is not None else rules.default
    raised = f": data loss raises the {given.value} " if cls.severity is not given else ""
    if rule is not None:
        why = f"{raised}of rule {rule.name}" if raised else ""
        lines.append(f"severity:  {cls.severity.value} ({cls.severity.info.description}){why}")
        lines.append(
            f"rule:      {rule.name} (line {rule.line}): {rule.description or '-'}; "
            + ", ".join(str(m) for m in rule.matchers)
        )
    else:
        why = f"{raised}of the default" if raised else ""
        lines.append(f"severity:  {cls.severity.value} (default: no rule matched){why}")
    lines.append(f"response:  {cls.severity.info.response_text}")
    for name, failing in explanation.tried:
        lines.append(f"  skipped  {name}: {failing} does not match")
    if cls.security:
        lines.append("security:  yes (security contact is notified)")
    if cls.data_breach:
        lines.append(
            "breach:    yes (a data breach, so a security incident; the data breach contact, "
            "legal in the playbook's policy, is notified)"
        )
    if cls.data_loss:
        lines.append("data loss: yes (SEV1)")
    team = load_teams(settings, resolve=False).choose(labels, annotations, None).name
    lines.extend(_probe_lines(settings, labels, team, cls.severity.value))
    if group_key is None and settings.group_by:
        group_key = format_group_key({n: labels.get(n, "") for n in settings.group_by})
    try:
        lines.extend(asyncio.run(_incident_for(settings, labels, annotations, group_key, at)))
    except SQLAlchemyError as exc:
        lines.append(f"incident:  unknown: the incident store is not readable ({type(exc).__name__})")
    return "\n".join(lines)
