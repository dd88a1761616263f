"""Time in escalation policies: durations as written in a policy file, and the business calendar
that says when "next business day" (the playbook's SEV4 response target) falls due.

Nothing here reads a clock: every moment is an argument.
"""

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from models.escalation._base import Frozen

__all__ = [
    "NEXT_BUSINESS_DAY",
    "BusinessCalendar",
    "Duration",
    "SlaTarget",
    "format_duration",
    "parse_duration",
]

NEXT_BUSINESS_DAY = "next_business_day"

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday(name: str) -> int:
    """``mon`` or ``monday`` (any case) → 0; anything else is refused by name."""
    text = name.strip().lower()
    for names in (_WEEKDAYS, _WEEKDAY_NAMES):
        if text in names:
            return names.index(text)
    raise ValueError(f"unknown weekday {name.strip()!r} (mon..sun, or mon-fri)")


def parse_duration(value: object) -> object:
    """``"15m"``, ``"2h"``, ``"1h30m"``, ``"1d"``, ``"45s"`` or a number of seconds → timedelta.

    Anything else is passed on for pydantic's own timedelta parsing (ISO 8601 ``PT15M``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        match = _DURATION.fullmatch(text)
        if match and text:
            d, h, m, s = (int(g) if g else 0 for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
    return value


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds: ``timedelta(minutes=90)`` → ``1h30m``."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + ("".join(parts) or "0s")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: A response target: a duration, or ``next_business_day`` (SEV4).
SlaTarget = Duration | Literal["next_business_day"]


class BusinessCalendar(Frozen):
    """Business hours in one time zone, for "next business day" (SEV4)."""

    timezone: str = "UTC"
    days: tuple[int, ...] = Field(
        default=(0, 1, 2, 3, 4), description="Business weekdays, Monday=0 (names like mon also)."
    )
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: object) -> object:
        """``mon,tue``, ``[mon, tue]``, ``monday``, ranges ``mon-fri`` (wrapping: ``sun-thu``), or
        numbers; an unknown name is an error, never a guess."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            days: list[object] = []
            for item in value:
                if isinstance(item, str):
                    first, dash, last = item.partition("-")
                    start = _weekday(first)
                    if dash:
                        end = _weekday(last)
                        days.extend((start + n) % 7 for n in range((end - start) % 7 + 1))
                    else:
                        days.append(start)
                else:
                    days.append(item)
            return tuple(days)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        # YAML reads an unquoted 9:00 as the base-60 number 540, which pydantic would take as
        # seconds after midnight (00:09): refuse numbers, say how to write it.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError('write business hours as quoted "HH:MM" (YAML reads 9:00 as a number)')
        return value

    @model_validator(mode="after")
    def _sane(self) -> "BusinessCalendar":
        if not self.days or any(d not in range(7) for d in self.days):
            raise ValueError("business days must be weekdays 0 (Monday) to 6 (Sunday)")
        if self.end <= self.start:
            raise ValueError("business hours must end after they start")
        return self

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def next_business_day_end(self, moment: datetime) -> datetime:
        """The close of business of the first business day after ``moment``'s local date.

        Opened Friday 18:00 → Monday 17:00; opened Monday 03:00 → Tuesday 17:00 (the response is
        due *on* the next business day, by its close)."""
        zone = ZoneInfo(self.timezone)
        day = moment.astimezone(zone).date()
        for _ in range(366 + 7):
            day += timedelta(days=1)
            if self.is_business_day(day):
                return datetime.combine(day, self.end, zone).astimezone(moment.tzinfo)
        raise ValueError("no business day within a year: check the calendar's holidays")

    def next_business_morning(self, moment: datetime) -> datetime:
        """The opening of business on the day :meth:`next_business_day_end` falls on: when a
        next-business-day incident is listed in the morning digest (opened Friday 18:00 → Monday
        09:00)."""
        due = self.next_business_day_end(moment).astimezone(ZoneInfo(self.timezone))
        return datetime.combine(due.date(), self.start, due.tzinfo).astimezone(moment.tzinfo)
