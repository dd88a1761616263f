"""Which offset of each partition a sink may commit while it delivers out of poll order.

The worker delivers incidents independently: an incident held by its own failing calls must not
hold the others, so records finish out of order. Kafka keeps one committed offset per partition,
and everything before it counts as done; so the offset committed is the oldest record of the
partition not yet finished (delivered, dead-lettered or skipped), or past the last record polled
when all are. A restart then reads again from the oldest unfinished record: what was held is
delivered after the restart, and what finished after it is answered by the delivery log.

Pure bookkeeping, no I/O.
"""

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["PendingOffsets"]

P = TypeVar("P", bound=Hashable)


class PendingOffsets(Generic[P]):
    def __init__(self) -> None:
        self._open: dict[P, set[int]] = {}
        self._next: dict[P, int] = {}
        self._committed: dict[P, int] = {}

    def polled(self, partition: P, offset: int) -> None:
        """A record was handed to the worker; it is open until :meth:`finished`."""
        self._open.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finished(self, partition: P, offset: int) -> None:
        self._open.get(partition, set()).discard(offset)

    def __len__(self) -> int:
        """Records open, over all partitions."""
        return sum(len(offsets) for offsets in self._open.values())

    def committable(self) -> dict[P, int]:
        """Per partition, the offset to commit: its oldest open record, else the next to poll."""
        return {p: min(self._open[p], default=end) for p, end in self._next.items()}

    def to_commit(self) -> dict[P, int]:
        """The committable offsets that moved since :meth:`committed` last recorded them."""
        return {p: o for p, o in self.committable().items() if self._committed.get(p) != o}

    def committed(self, offsets: dict[P, int]) -> None:
        self._committed.update(offsets)

    def clear(self) -> None:
        """Forget everything (the partitions were given up: their next owner reads from the
        offsets committed)."""
        self._open.clear()
        self._next.clear()
        self._committed.clear()
