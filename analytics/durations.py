"""Durations in words for people (the console's pages, the response targets' labels): one
formatter, so a target reads the same wherever it is shown."""

from datetime import timedelta

__all__ = ["format_duration"]


def format_duration(duration: timedelta) -> str:
    """A duration for people: ``7 s``, ``12 min``, ``1 h 05 min``, ``2 d 4 h`` (whole units,
    rounded down; a negative duration keeps its sign)."""
    sign = "-" if duration < timedelta(0) else ""
    seconds = int(abs(duration.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    elif minutes:
        text = f"{minutes} min"
    else:
        text = f"{seconds} s"
    return sign + text
