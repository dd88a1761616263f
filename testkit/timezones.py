"""Time zones of a test's own, so that "tomorrow morning" comes within seconds on the wall clock.

sevflow reads the wall clock: a SEV4 is listed in the digest when the next business day's
morning comes in the escalation policy's ``business_hours.timezone``. Rather than shift sevflow's
clock, an end-to-end test gives the calendar a zone whose local midnight is a moment it chooses:
a one-rule TZif file (RFC 8536) with that offset, in a folder the sevflow process searches first
(``PYTHONTZPATH``, read by the standard library's :mod:`zoneinfo`). The processes keep the real
time; only the calendar's idea of where the day ends moves.
"""

import os
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["SYSTEM_ZONEINFO", "tz_search_path", "zone_with_midnight_at"]

#: Where Debian keeps the IANA zones, searched after a test's own.
SYSTEM_ZONEINFO = "/usr/share/zoneinfo"

_DAY = 24 * 3600


def _posix_offset(seconds: int) -> str:
    """The offset in a POSIX TZ string: west of Greenwich is positive, so east is negated."""
    sign = "-" if seconds > 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"


def _tzif(offset: int, abbreviation: str) -> bytes:
    """A version-2 TZif file with no transitions, one local time type and a footer rule."""
    chars = abbreviation.encode("ascii") + b"\0"
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, len(chars))  # isut, isstd, leap, time, type, char
    header = b"TZif2" + b"\0" * 15 + counts
    block = struct.pack(">lBB", offset, 0, 0) + chars
    footer = f"\n<{abbreviation}>{_posix_offset(offset)}\n".encode("ascii")
    return header + block + header + block + footer


def zone_with_midnight_at(directory: Path, midnight: datetime, name: str = "Sevflow/Test") -> str:
    """Write a zone named ``name`` under ``directory`` in which ``midnight`` (an aware moment,
    whole seconds) is 00:00 local; return its key for a ``business_hours.timezone``."""
    seconds_into_day = int(
        (
            midnight.astimezone(UTC)
            - midnight.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        )
        / timedelta(seconds=1)
    )
    offset = -seconds_into_day % _DAY
    if offset > _DAY // 2:
        offset -= _DAY  # keep it within ±12 hours, like the zones people live in
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_tzif(offset, "SFT"))
    return name


def tz_search_path(directory: Path) -> str:
    """``PYTHONTZPATH`` for a process that must find the zones under ``directory`` first, then
    the system's."""
    return os.pathsep.join([str(directory), SYSTEM_ZONEINFO])
