"""Plain-text rendering for terminals: aligned tables, short durations, the report.

Pure string functions (no printing), so the CLI's output is tested exactly and the same renderers
can serve any other text surface. Light to import (``sevflow incidents list`` loads it): the
report's figures and the escalation calendar are named for the type checker only.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from models.events import AlertSnapshot, RunbookSnapshot
from models.incident import Incident

if TYPE_CHECKING:
    from analytics.figures import DurationStats, Report, ResponseTargets, SeverityFigures
    from analytics.incidents import IncidentDetail
    from models.escalation import BusinessCalendar

__all__ = [
    "describe_calendar",
    "format_compliance",
    "format_duration",
    "format_time",
    "render_detail",
    "render_incidents",
    "render_report",
    "render_table",
]


#: The widest a table's cell is shown (the API and ``incidents show``'s fields give the whole).
CELL_MAX = 200


def printable(text: str) -> str:
    """``text`` on one line, each unprintable character escaped as ``\\x..``: an alert's title
    reached the terminal with its escape sequences (a colour, a bell, a cursor move) and its line
    breaks split the table's rows."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _cell(text: str) -> str:
    shown = printable(text)
    return shown if len(shown) <= CELL_MAX else shown[: CELL_MAX - 1] + "…"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the headers; each cell one
    printable line of at most :data:`CELL_MAX` characters."""
    rows = [[_cell(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [headers, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


def format_duration(delta: timedelta | None) -> str:
    """``45s``, ``12m30s``, ``2h05m``, ``3d04h``; ``-`` for no value."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{sign}{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d{hours:02d}h"


def format_time(moment: datetime | None) -> str:
    """``2026-11-27 14:30 UTC`` (minutes are what operators compare); ``-`` for no value."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


#: How a security incident nobody published yet is shown to operators.
HELD = "held from the status page"


def _status_page(i: Incident) -> str:
    if i.held_from_status_page:
        return f"{HELD}: publish with `sevflow statuspage publish {i.id} --title … --body …`"
    if i.status_page_published_at is not None:
        by = i.status_page_published_by
        who = f" by {by.name or by.via}" if by is not None else ""
        return f'published{who} at {format_time(i.status_page_published_at)}: "{i.status_page_title}"'
    return "automatic (the public annotations, README: what becomes public)"


def render_incidents(incidents: Sequence[Incident]) -> str:
    """The ``incidents list`` table."""
    rows = [
        [
            i.id,
            i.severity.value,
            i.state.value,
            format_time(i.opened_at),
            ",".join(i.services) or "-",
            f"{i.alerts_firing}/{i.alerts_total}",
            f"{i.title} ({HELD})" if i.held_from_status_page else i.title,
        ]
        for i in incidents
    ]
    return render_table(["ID", "SEV", "STATE", "OPENED", "SERVICES", "FIRING", "TITLE"], rows)


def _alert_rows(alerts: Sequence[AlertSnapshot]) -> list[list[str]]:
    return [
        [
            a.labels.get("alertname", "-"),
            a.status,
            a.severity.value,
            a.labels.get("instance") or a.labels.get("pod") or a.labels.get("host") or "-",
            format_time(a.starts_at),
            a.fingerprint,
        ]
        for a in alerts
    ]


def render_detail(detail: "IncidentDetail") -> str:
    """The ``incidents show`` page: fields, timeline, alerts."""
    from analytics.postmortem import describe_event

    i = detail.incident
    acked = (
        f"{format_time(i.acknowledged_at)} by {i.acknowledged_by.name or i.acknowledged_by.via}"
        if i.acknowledged_at is not None and i.acknowledged_by is not None
        else format_time(i.acknowledged_at)
    )
    resolved = (
        f"{format_time(i.resolved_at)} by {i.resolved_by.name or i.resolved_by.via}"
        if i.resolved_at is not None and i.resolved_by is not None
        else format_time(i.resolved_at)
    )
    fields = [
        ("Incident", i.id),
        ("Title", i.title),
        ("Severity", f"{i.severity.value} ({i.severity.info.description})"),
        ("State", i.state.value),
        ("Services", ", ".join(i.services) or "-"),
        ("Team", i.team),
        ("Opened", format_time(i.opened_at)),
        ("Acknowledged", acked),
        ("Resolved", resolved),
        ("Alerts", f"{i.alerts_firing} firing of {i.alerts_total}"),
        ("Flaps", str(i.flaps)),
        ("Security", "yes" if i.security else "no"),
        ("Data loss", "yes" if i.data_loss else "no"),
        ("Data breach", "yes" if i.data_breach else "no"),
        ("Runbook", _runbook_field(i.runbook, i.runbook_url)),
        ("Impact", i.impact or "-"),
        ("Status page", _status_page(i)),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"{name + ':':<{width + 1}} {printable(value)}" for name, value in fields]
    timeline = [
        [str(e.sequence), format_time(e.occurred_at), e.type.value, describe_event(e)]
        for e in sorted(detail.timeline, key=lambda e: e.sequence)
    ]
    lines += ["", "Timeline", render_table(["#", "AT", "TYPE", "WHAT"], timeline)]
    lines += [
        "",
        "Alerts",
        render_table(
            ["ALERT", "STATUS", "SEV", "INSTANCE", "STARTS", "FINGERPRINT"], _alert_rows(detail.alerts)
        ),
    ]
    if i.runbook is not None:
        lines += ["", f"Runbook: {i.runbook.title}", i.runbook.text.rstrip("\n")]
    return "\n".join(lines)


def _runbook_field(runbook: RunbookSnapshot | None, url: str | None) -> str:
    """The matched runbook's title and name (its text follows the alerts), and the alert's own
    ``runbook_url`` beside it."""
    if runbook is None:
        return url or "-"
    shown = f"{runbook.title} ({runbook.name})"
    if runbook.placeholders:
        shown += f", to fill in: {', '.join(f'<{p}>' for p in runbook.placeholders)}"
    return f"{shown}; alert's runbook: {url}" if url else shown


def _stats_cells(stats: "DurationStats | None") -> list[str]:
    if stats is None:
        return ["-", "-", "-"]
    return [format_duration(stats.mean), format_duration(stats.median), format_duration(stats.p90)]


def format_compliance(met: int, breached: int) -> str:
    """``met / (met + breached)`` as a percentage rounded *down* to one decimal, so ``100.0%``
    only ever means no breach (1999 met, 1 breached is ``99.9%``); ``-`` when nothing is decided.
    Integer arithmetic: no float can round 99.95 up."""
    decided = met + breached
    if not decided:
        return "-"
    tenths = met * 1000 // decided
    return f"{tenths // 10}.{tenths % 10}%"


def _target_cell(f: "SeverityFigures") -> str:
    if f.target is not None:
        return format_duration(f.target)
    return "-" if f.severity is None else "next business day"


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def describe_calendar(calendar: "BusinessCalendar") -> str:
    """``Mon-Fri 09:00-17:00 UTC``, ``Sun,Mon 08:00-16:30 Asia/Jerusalem, 2 holidays``."""
    days = sorted(calendar.days)
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        day_text = f"{_DAY_NAMES[days[0]]}-{_DAY_NAMES[days[-1]]}"
    else:
        day_text = ",".join(_DAY_NAMES[d] for d in days)
    hours = f"{calendar.start:%H:%M}-{calendar.end:%H:%M} {calendar.timezone}"
    holidays = len(calendar.holidays)
    extra = f", {holidays} holiday{'s' * (holidays != 1)}" if holidays else ""
    return f"{day_text} {hours}{extra}"


def _sev4_note(targets: "ResponseTargets") -> str:
    if targets.sev4_hours is not None:
        return (
            f"SEV4's target is 'next business day' in the playbook; treated here as "
            f"{targets.sev4_hours:g} hours (--sev4-target-hours)."
        )
    return (
        "SEV4's target is 'next business day': the close of the first business day after it "
        f"opened (or reopened), business hours {describe_calendar(targets.calendar)} (the "
        "escalation policy's); --sev4-target-hours sets fixed hours instead."
    )


def _figures_row(name: str, f: "SeverityFigures") -> list[str]:
    return [
        name,
        _target_cell(f),
        str(f.incidents),
        str(f.acknowledged),
        *_stats_cells(f.mtta),
        str(f.resolved),
        *_stats_cells(f.mttr),
        str(f.sla_met),
        str(f.sla_breached),
        str(f.sla_pending),
        format_compliance(f.sla_met, f.sla_breached),
    ]


def render_report(report: "Report", *, source: str) -> str:
    """The ``report`` table, with the definitions an operator needs to read it."""
    headers = [
        "SEV",
        "TARGET",
        "INCIDENTS",
        "ACKED",
        "MTTA",
        "TTA p50",
        "TTA p90",
        "RESOLVED",
        "MTTR",
        "TTR p50",
        "TTR p90",
        "MET",
        "BREACHED",
        "PENDING",
        "SLA",
    ]
    rows = [_figures_row(s.value, f) for s, f in report.by_severity.items()]
    rows.append(_figures_row("ALL", report.overall))
    notes = [
        f"Source: {source}; as of {format_time(report.now)}.",
        "TTA: time to first acknowledgement from the opening (or reopening) it answered; "
        "TTR: time to resolution (resolved incidents only).",
        "SLA: the opening and every reopening responded to (acknowledged, or resolved first) "
        "within the target of the severity at the response; BREACHED if any was not; "
        "PENDING: one not yet responded to and still within target (excluded from SLA %).",
        _sev4_note(report.targets),
    ]
    if report.skipped:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
        notes.append(f"Skipped: {skipped} (not in the figures).")
    return render_table(headers, rows) + "\n\n" + "\n".join(notes)
