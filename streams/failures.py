"""Transient or permanent: what the worker does when applying a record fails.

::

    Exception
     ├─ transient: retried with backoff until it passes (the record is never skipped)
     │    SQLAlchemy OperationalError (connection lost, PostgreSQL serialization failure, deadlock,
     │    lock or statement timeout, SQLite "database is locked"), InterfaceError, a DBAPIError
     │    whose connection was invalidated, the pool's TimeoutError, any other SQLAlchemyError,
     │    OSError, TimeoutError
     └─ permanent: the record can never succeed, so it is isolated and quarantined
          SQLAlchemy DataError, IntegrityError, ProgrammingError, NotSupportedError, PostgreSQL's
          "program limit exceeded" (SQLSTATE class 54: an index entry too large, reported as an
          OperationalError), a StatementError not raised by the database (a value a column type
          refuses), and a record that does not decode, or is of a newer schema version
          (streams/records.py)

A batch of alert records is one transaction: when it fails permanently, :func:`isolate` bisects it,
committing the halves that pass and handing each single record that fails to the quarantine, so
one poison record costs about ``2 log2(batch)`` extra transactions and the rest of the batch is
stored. Logged reasons never hold SQL text or parameters (SQLAlchemy's ``str(exc)`` holds both):
see :func:`reason_of`.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
    SQLAlchemyError,
    StatementError,
)

__all__ = [
    "PERMANENT",
    "RETRIED",
    "apart",
    "is_permanent",
    "isolate",
    "reason_of",
    "retry_transient",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Database errors a retry cannot cure: the statement or its values are wrong, not the moment.
PERMANENT = (DataError, IntegrityError, ProgrammingError, NotSupportedError)
#: Errors worth retrying (when not :func:`is_permanent`).
RETRIED = (SQLAlchemyError, OSError, TimeoutError)
_REASON_MAX = 200
#: PostgreSQL's SQLSTATE class of the limits a value or statement can exceed (:func:`is_permanent`).
_LIMIT_CLASS = "54"


def is_permanent(exc: BaseException) -> bool:
    """True when running the same statement again would fail the same way."""
    if isinstance(exc, PERMANENT):
        return True
    if isinstance(exc, DBAPIError) and _over_a_limit(exc):
        return True
    # A StatementError that is not a DBAPIError was raised before the database saw the statement
    # (a bind parameter the column type refuses): it will be refused again.
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def _over_a_limit(exc: DBAPIError) -> bool:
    """PostgreSQL's SQLSTATE class 54, "program limit exceeded": an index entry, a statement or
    its arguments larger than the server takes. The same values exceed it every time, yet
    SQLAlchemy reports it as an ``OperationalError``, which alone would be retried for ever."""
    return str(getattr(exc.orig, "sqlstate", None) or "").startswith(_LIMIT_CLASS)


def reason_of(exc: BaseException) -> str:
    """The class, SQLSTATE and first line of the driver's message: no SQL text, no parameters
    (PostgreSQL's DETAIL line, which quotes the values, is the second line and left out)."""
    name = type(exc).__name__
    if isinstance(exc, StatementError):
        orig = exc.orig
        code = getattr(orig, "sqlstate", None)
        first = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else ""
        detail = f" [{code}]" if code else ""
        text = f"{name}{detail}: {first}" if first else f"{name}{detail}"
    else:
        lines = str(exc).strip().splitlines()
        text = f"{name}: {lines[0]}" if lines else name
    return text[:_REASON_MAX]


async def retry_transient(
    what: str,
    step: Callable[[], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_delay: float = 30.0,
) -> T:
    """Run ``step`` until it succeeds, backing off on transient errors (never skipping work);
    a permanent error (:func:`is_permanent`) is raised at once."""
    delay = 0.2
    while True:
        try:
            return await step()
        except RETRIED as exc:
            if is_permanent(exc):
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, reason_of(exc), delay)
            await sleep(delay)
            delay = min(delay * 2, max_delay)


async def isolate(
    items: Sequence[T],
    apply: Callable[[Sequence[T]], Awaitable[list[R]]],
    poisoned: Callable[[T, BaseException], Awaitable[None]],
) -> list[R]:
    """``apply`` the items in one go; on a permanent error apply each half in turn (in order) the
    same way, and hand a single item that fails permanently to ``poisoned``. Returns what the
    applied parts returned, in order. ``apply`` retries transient errors itself; anything else
    it raises propagates."""
    if not items:
        return []
    try:
        return await apply(items)
    except RETRIED as exc:
        if not is_permanent(exc):
            raise
        if len(items) == 1:
            await poisoned(items[0], exc)
            return []
    middle = len(items) // 2
    return await isolate(items[:middle], apply, poisoned) + await isolate(
        items[middle:], apply, poisoned
    )


async def apart(what: str, step: Callable[[], Awaitable[list[R]]]) -> list[R]:
    """What ``step`` returns, or nothing when it fails permanently (:func:`is_permanent`, logged
    with its reason): a timer's run over many incidents or windows goes on past one that the
    database refuses for good, which is tried again at the next run. Transient errors propagate
    (the timer logs them, and its next run retries everything)."""
    try:
        return await step()
    except RETRIED as exc:
        if not is_permanent(exc):
            raise
        log.error("%s cannot be applied (%s); the others go on, it is tried again", what, reason_of(exc))
        return []
