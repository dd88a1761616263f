"""Shrinking a JSON value to a size, visibly and fairly: every text cut to the one length that
lets the whole fit, and, when even short texts do not, entries past the first few of each object
or list left out and counted. Pure.

Used for what leaves sevflow with a size limit: a PagerDuty event's ``custom_details`` (512 KB,
sinks/pagerduty_format.py) and an incident event's document on Kafka (models/event_size.py).
"""

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TRUNCATED", "capped", "clip_text", "largest", "longest", "widest"]

#: What ends a text that was cut.
TRUNCATED = "… (truncated)"

Clip = Callable[[str, int], str]


def clip_text(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its beginning and :data:`TRUNCATED`,
    the whole ``limit`` characters long."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED


def capped(value: Any, cap: int, keep: int | None, clip: Clip = clip_text) -> Any:
    """``value`` with every text longer than ``cap`` cut (visibly, by ``clip``), and each object /
    list past its first ``keep`` entries replaced by a note of how many were left out."""
    if isinstance(value, str):
        return clip(value, cap)
    if isinstance(value, Mapping):
        items = list(value.items())
        shown = {str(k): capped(v, cap, keep, clip) for k, v in items[:keep]}
        if keep is not None and len(items) > keep:
            shown["…"] = f"{len(items) - keep} more left out"
        return shown
    if isinstance(value, list):
        kept = [capped(v, cap, keep, clip) for v in value[:keep]]
        if keep is not None and len(value) > keep:
            kept.append(f"… {len(value) - keep} more left out")
        return kept
    return value


def longest(value: Any) -> int:
    """The length of the longest text in ``value``."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return max((longest(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((longest(v) for v in value), default=0)
    return 0


def widest(value: Any) -> int:
    """The most entries any object or list in ``value`` has."""
    if isinstance(value, Mapping):
        return max([len(value), *(widest(v) for v in value.values())])
    if isinstance(value, list):
        return max([len(value), *(widest(v) for v in value)])
    return 0


def largest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
    """The largest n in [low, high] with ``fits(n)`` (true up to some n, false beyond), if any."""
    if not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low
