"""Severities SEV1 to SEV4 exactly as the incident-response playbook's table defines them.

SEV1 service completely down (< 15 min; all users unable to access, data loss); SEV2 major
functionality impaired (< 30 min; core features broken, high error rate); SEV3 minor functionality
impaired (< 2 hours; non-critical feature broken, degraded performance); SEV4 cosmetic or minor
issue (next business day; UI glitches, minor bugs).
"""

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

__all__ = ["PLAYBOOK", "Severity", "SeverityInfo"]


class Severity(StrEnum):
    """Incident severity; SEV1 is the most severe. Compare with :attr:`rank`, not with ``<``."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def rank(self) -> int:
        """1 for SEV1 … 4 for SEV4: lower is more severe."""
        return _RANKS[self]

    def is_more_severe_than(self, other: "Severity") -> bool:
        # (asked several times per alert: the ranks looked up, not computed from the value)
        return _RANKS[self] < _RANKS[other]

    def raised(self, levels: int = 1) -> "Severity":
        """This severity made ``levels`` steps more severe, stopping at SEV1."""
        return Severity(f"SEV{max(1, self.rank - levels)}")

    @property
    def info(self) -> "SeverityInfo":
        return PLAYBOOK[self]

    @staticmethod
    def most_severe(*severities: "Severity") -> "Severity":
        return min(severities, key=lambda s: s.rank)


#: Each severity's rank, by value (a member is its value: a ``str``).
_RANKS: dict[str, int] = {s.value: int(s.value[3]) for s in Severity}


@dataclass(frozen=True)
class SeverityInfo:
    """The playbook's row for one severity."""

    description: str
    response_target: timedelta | None  # None: next business day (needs a calendar)
    response_text: str
    examples: tuple[str, ...]


PLAYBOOK: dict[Severity, SeverityInfo] = {
    Severity.SEV1: SeverityInfo(
        "Service completely down",
        timedelta(minutes=15),
        "< 15 min",
        ("All users unable to access", "data loss"),
    ),
    Severity.SEV2: SeverityInfo(
        "Major functionality impaired",
        timedelta(minutes=30),
        "< 30 min",
        ("Core features broken", "high error rate"),
    ),
    Severity.SEV3: SeverityInfo(
        "Minor functionality impaired",
        timedelta(hours=2),
        "< 2 hours",
        ("Non-critical feature broken", "degraded performance"),
    ),
    Severity.SEV4: SeverityInfo(
        "Cosmetic or minor issue",
        None,
        "Next business day",
        ("UI glitches", "minor bugs"),
    ),
}
