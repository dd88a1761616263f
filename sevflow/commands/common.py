"""What the commands share: exit statuses, running work on an engine of the configured store,
times given as options, the login name (the store's problem in one line: :mod:`sevflow.problems`).

Exit statuses: 0 done; 1 the answer could not be produced (no such incident, store or Kafka
unreachable, no tables); 2 an option is invalid (argparse's own usage errors exit 2 as well).
Errors go to stderr as one line naming the command and the problem.

Light to import: SQLAlchemy and the store are imported by :func:`with_engine` when it runs;
:func:`with_reads` reads the store through its driver and imports no SQLAlchemy at all.
"""

import argparse
import asyncio
import getpass
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from models.settings import Settings
from sevflow.problems import store_problem

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from models.incident import Incident
    from store.direct_reads import DirectReads

__all__ = [
    "COUNT_MAX",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "INCIDENT_ID_MAX",
    "OptionError",
    "StoreUnreadable",
    "add_window",
    "count",
    "incident_id",
    "login",
    "parse_time",
    "read_incident",
    "shown",
    "window",
    "with_engine",
    "with_reads",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

T = TypeVar("T")

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class OptionError(ValueError):
    """An option value that cannot be used (exit 2)."""


def shown(text: str) -> str:
    """``text`` on one line for a listing, control characters escaped as ``\\x..`` (text a caller
    wrote must not break the table or reach the terminal as an escape sequence)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


#: The largest count an option takes: far beyond any listing, well within the stores' integers.
COUNT_MAX = 1_000_000_000


def count(value: str) -> int:
    """A count option (argparse ``type=``): a whole number from 1 to :data:`COUNT_MAX` (0 listed
    everything, -5 all but the oldest 5, and a 20-digit number overflowed SQLite's integer)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value[:40]!r}") from None
    if not 1 <= number <= COUNT_MAX:
        raise argparse.ArgumentTypeError(f"must be from 1 to {COUNT_MAX:,}, got {value[:40]}")
    return number


#: models.incident.commands.INCIDENT_ID_MAX (not imported here: a command stays light to start).
INCIDENT_ID_MAX = 64


def incident_id(value: str) -> str:
    """An incident id argument (argparse ``type=``): 1 to 64 characters, as the store and the
    commands topic take them; anything else is a usage error, also when the store cannot be read
    and the command is queued unchecked (a longer id was a traceback there)."""
    if not 1 <= len(value) <= INCIDENT_ID_MAX:
        raise argparse.ArgumentTypeError(
            f"an incident id has 1 to {INCIDENT_ID_MAX} characters, not {len(value)}"
        )
    return value


def login() -> str | None:
    """The login name of who runs the command (the actor of what it does), if known."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def parse_time(value: str, now: datetime) -> datetime:
    """An instant from an option: RFC 3339 / ISO 8601 (``2026-11-27``, ``2026-11-27T14:30Z``;
    no zone means UTC) or an age relative to ``now`` (``30m``, ``24h``, ``7d``, ``2w``)."""
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    try:
        if relative:
            return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a time (2026-11-27T14:30Z) nor an age (30m, 24h, 7d)"
            ) from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        # An age beyond timedelta's range, or a time that leaves datetime's years 1-9999 in UTC.
        raise ValueError(
            f"{value!r} is out of range (times and ages must stay within the years 1-9999 UTC)"
        ) from None


def add_window(parser: argparse.ArgumentParser, what: str) -> None:
    """``--since`` and ``--until`` (read by :func:`window`)."""
    parser.add_argument(
        "--since", metavar="TIME", help=f"only {what} opened at or after TIME (ISO time or age: 7d)"
    )
    parser.add_argument("--until", metavar="TIME", help=f"only {what} opened before TIME")


def window(options: argparse.Namespace, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as instants; :class:`OptionError` when unusable."""
    try:
        since = parse_time(options.since, now) if options.since else None
        until = parse_time(options.until, now) if options.until else None
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    if since is not None and until is not None and since >= until:
        raise OptionError("--since must be before --until")
    return since, until


def with_engine(
    settings: Settings, name: str, err: TextIO, work: "Callable[[AsyncEngine], Coroutine[Any, Any, T]]"
) -> T | int:
    """Run ``work`` on an engine of the configured store; a store error becomes exit status 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import UnsupportedDatabaseError, async_engine

    async def main() -> T:
        engine = async_engine(settings.sqlalchemy_url())
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except UnsupportedDatabaseError as exc:
        print(f"sevflow {name}: {exc}", file=err)
    except SQLAlchemyError as exc:
        print(f"sevflow {name}: cannot read the incident store: {store_problem(exc)}", file=err)
    return EXIT_FAILURE


def with_reads(
    settings: Settings, name: str, err: TextIO, work: "Callable[[DirectReads], T]"
) -> T | int:
    """Run ``work`` on :class:`store.direct_reads.DirectReads` of the configured store (no
    SQLAlchemy for a plain SQLite or PostgreSQL URL); a store error becomes exit status 1, with
    the message :func:`with_engine` gives."""
    from store.direct_reads import StoreReadError, UnsupportedStore, direct_reads

    try:
        with direct_reads(settings.sqlalchemy_url()) as reads:
            return work(reads)
    except UnsupportedStore as exc:
        print(f"sevflow {name}: {exc}", file=err)
    except StoreReadError as exc:
        print(f"sevflow {name}: cannot read the incident store: {store_problem(exc)}", file=err)
    return EXIT_FAILURE


class StoreUnreadable(Exception):
    """The incident store could not be read; the message is the problem (never the URL)."""


def read_incident(settings: Settings, incident_id: str) -> "Incident | None":
    """The incident as the store has it (None: no such incident); :class:`StoreUnreadable`."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import UnsupportedDatabaseError, async_engine
    from store.incidents import IncidentStore

    async def lookup() -> "Incident | None":
        engine = async_engine(settings.sqlalchemy_url())
        try:
            return await IncidentStore(engine).get(incident_id)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(lookup())
    except UnsupportedDatabaseError as exc:
        raise StoreUnreadable(str(exc)) from None
    except SQLAlchemyError as exc:
        raise StoreUnreadable(store_problem(exc)) from None
