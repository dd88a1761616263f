"""The report's text rendering: the SLA percentage never rounds a breach away."""

import re
from datetime import timedelta

from analytics.figures import ResponseTargets, compute_report
from analytics.incident_times import IncidentTimes
from analytics.text import CELL_MAX, render_report, render_table
from models.events import IncidentState
from models.severity import Severity
from tests.builders import T0


def sla_cell(report_text: str, row: str) -> str:
    line = next(line for line in report_text.splitlines() if line.startswith(row + " "))
    return re.split(r"\s{2,}", line.strip())[-1]


def acked_after(index: int, minutes: float) -> IncidentTimes:
    return IncidentTimes(
        incident_id=f"inc_{index:05d}",
        severity=Severity.SEV2,
        state=IncidentState.ACKNOWLEDGED,
        opened_at=T0,
        first_acknowledged_at=T0 + timedelta(minutes=minutes),
    )


def test_sla_percentage_rounds_down_so_100_means_no_breach() -> None:
    # 1999 met and 1 breached is 99.95%: ``.1%`` formatting showed 100.0%.
    items = [acked_after(i, 40 if i == 0 else 1) for i in range(2000)]
    text = render_report(compute_report(items, ResponseTargets(), T0 + timedelta(hours=10)), source="x")
    assert sla_cell(text, "SEV2") == "99.9%"
    assert sla_cell(text, "ALL") == "99.9%"
    # 2 of 3 is 66.66…%: down to 66.6%, not up to 66.7%; all met is exactly 100.0%.
    two_of_three = [acked_after(0, 1), acked_after(1, 1), acked_after(2, 40)]
    text = render_report(compute_report(two_of_three, ResponseTargets(), T0), source="x")
    assert sla_cell(text, "SEV2") == "66.6%"
    text = render_report(compute_report(two_of_three[:2], ResponseTargets(), T0), source="x")
    assert sla_cell(text, "SEV2") == "100.0%"
    assert sla_cell(text, "SEV1") == "-"


def test_report_notes_state_the_episode_definitions() -> None:
    text = render_report(compute_report([acked_after(0, 1)], ResponseTargets(), T0), source="x")
    assert "the opening and every reopening responded to" in text
    assert "from the opening (or reopening) it answered" in text


def test_a_tables_cells_are_one_printable_line_of_bounded_width() -> None:
    """An alert's title reached the terminal with its escape sequences (a colour, a bell) and
    its line breaks split the row; a 100,000-character title made the rule as wide."""
    text = render_table(
        ["ID", "TITLE"], [["inc_1", "red\x1b[31m\x07\r\nnext row"], ["inc_2", "x" * 100_000]]
    )
    _header, rule, first, second = text.split("\n")
    assert first == "inc_1  red\\x1b[31m\\x07\\x0d\\x0anext row"
    assert len(second) == len("inc_2  ") + CELL_MAX
    assert second.endswith("x…")
    assert len(rule) == len("-----  ") + CELL_MAX
