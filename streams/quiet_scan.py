"""A fair scan of the incidents in their quiet period: one page per call, by id, wrapping around.

The quiet timer and the probe runner each look at a bounded number of quiet incidents per run.
Taken oldest first, the same incidents would come first at every run while they stay quiet (an
incident whose probe never passes stays quiet until someone resolves it), and with more of them
than a page holds the others would never be looked at. A :class:`QuietScan` remembers where its
last page ended and continues after it, starting again from the lowest id once it reached the
end: with ``N`` candidates, every one of them is in one of any ``N // limit + 2`` consecutive
pages, however old the others are.
"""

from datetime import datetime
from typing import Protocol

__all__ = ["PAGE_LIMIT", "QuietScan"]

#: The most quiet incidents one run of the quiet timer or of the probe runner looks at.
PAGE_LIMIT = 100


class QuietIncidents(Protocol):
    async def quiet_incidents(
        self, before: datetime, limit: int = 100, *, after: str | None = None
    ) -> list[str]: ...


class QuietScan:
    """Pages through the quiet incidents (quiet since ``before`` at the latest) by id."""

    def __init__(self, limit: int = PAGE_LIMIT) -> None:
        self.limit = limit
        self._after = ""

    async def page(self, store: QuietIncidents, before: datetime) -> list[str]:
        """The next page of at most ``limit`` incident ids after the previous page's last."""
        ids = await store.quiet_incidents(before, self.limit, after=self._after)
        if not ids and self._after:  # past the end: start again from the lowest id
            self._after = ""
            ids = await store.quiet_incidents(before, self.limit, after="")
        self._after = ids[-1] if len(ids) == self.limit else ""
        return ids
