"""Bounded ``IN (…)`` lists: SQLite builds before 3.32 allow 999 bound parameters a statement."""

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["IN_LIST_MAX", "chunks"]

T = TypeVar("T")

#: Values in one ``IN`` list at most.
IN_LIST_MAX = 500


def chunks(values: Sequence[T], size: int = IN_LIST_MAX) -> list[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size``."""
    return [values[start : start + size] for start in range(0, len(values), size)]
