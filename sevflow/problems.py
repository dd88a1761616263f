"""The incident store's problem in one line, as every role and command reports it on stderr when
it cannot prepare or read the store (start-up checks in sevflow/roles/, the commands in
sevflow/commands/).

Light to import: SQLAlchemy's error type is named for the type checker only.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

__all__ = ["store_problem"]


def store_problem(exc: "SQLAlchemyError | Exception") -> str:
    """The driver's first line (never the URL, which may carry a password), with a hint."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
    if "no such table" in first or ("relation" in first and "does not exist" in first):
        return f"{first} (run `sevflow init-db` first)"
    return first
