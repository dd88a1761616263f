"""Group commit: writes requested at about the same time share one transaction.

Concurrent callers (a sink delivering many incidents at once) would otherwise each open a write
transaction and queue for the database's write lock one by one — on SQLite literally, behind
``BEGIN IMMEDIATE``. Here each caller submits its write and waits; the first submission starts a
flush that, after ``linger`` seconds, takes everything queued so far (up to ``max_batch``) into one
transaction: a few milliseconds of linger turn the staggered completions of concurrent vendor calls
into one commit. A caller's
``submit`` returns only once its write is committed, or raises the transaction's error.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Commits submitted writes in shared transactions (``write`` applies one batch)."""

    def __init__(
        self,
        engine: AsyncEngine,
        write: Callable[[AsyncConnection, Sequence[T]], Awaitable[None]],
        *,
        committed: Callable[[Sequence[T]], None] | None = None,
        max_batch: int = 200,
        linger: float = 0.0,
    ) -> None:
        self._engine = engine
        self._write = write
        self._committed = committed
        self._max_batch = max_batch
        self._linger = linger
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(future)  # a cancelled caller must not cancel the others' commit

    async def _flush(self) -> None:
        # Let the submissions of this loop iteration (and of ``linger`` seconds) join.
        await asyncio.sleep(self._linger)
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            items = [item for item, _ in batch]
            try:
                async with self._engine.begin() as conn:
                    await self._write(conn, items)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
                if not isinstance(exc, Exception):
                    raise
            else:
                if self._committed is not None:
                    self._committed(items)
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
