"""SQLite's write-ahead log copied into the database file on a thread of its own.

Why: in WAL mode every commit appends its pages to the log, and by default the commit that takes
the log past 1,000 pages copies the whole log back into the database file and syncs it (a
checkpoint). That commit is made on the event loop of whichever role made it (store/sqlite_inline.py
runs SQLite's calls there), so every few dozen batches the worker's transaction, or a sink's
delivery log, held its loop for the copy and the ``fsync``: about a seventh of the worker's wall
time over new alerts (bench/README.md). The roles that write all the time (the worker, the sinks)
open their connections with ``wal_autocheckpoint=0`` and leave the copying to
:class:`WalCheckpoints`, which runs SQLite's ``PASSIVE`` checkpoint from a thread every
:data:`CHECKPOINT_INTERVAL` seconds. SQLite releases the GIL while it works, and a passive
checkpoint never blocks a writer or a reader, nor waits for them: what it cannot copy yet (a page
a reader still needs) it copies the next time. A log grown past :data:`RESTART_PAGES` is
restarted so that it does not grow without bound under a steady stream of commits.

Any other connection (a CLI command, the outbox relay's) keeps SQLite's automatic checkpoints, so
the log never grows without bound when no role runs. Two processes checkpointing the same file at
once is harmless: one of them finds the checkpoint lock taken and tries again next time.
"""

import logging
import os
import sqlite3
import threading
from collections.abc import Callable

from store.sqlite_inline import busy_error

__all__ = ["CHECKPOINT_INTERVAL", "RESTART_PAGES", "RESTART_WAIT_MS", "WalCheckpoints"]

log = logging.getLogger(__name__)

#: Seconds between two checkpoints; an eighth of it while the log is longer than a quarter of
#: :data:`RESTART_PAGES` (commits coming fast).
CHECKPOINT_INTERVAL = 0.2

#: A log of more pages than this (16 MB of 4 KB pages) is restarted. A passive checkpoint copies
#: what was committed when it began, but the log is rewound (its next commit written from its
#: start) only once a checkpoint copied all of it and no reader uses it: under a steady stream of
#: commits that moment never comes: in a 100,000-alert storm the log grew to 70 MB (12 MB with
#: SQLite's own checkpoints). Past this size the thread asks for a ``RESTART`` checkpoint, which
#: holds new write transactions back (for at most :data:`RESTART_WAIT_MS`; the roles wait for
#: the write lock without holding their loop: store/sqlite_inline.py) until it has copied the rest
#: and the log can be rewound.
RESTART_PAGES = 4_096

#: How long a ``RESTART`` checkpoint waits for the writer and the readers of the log before it
#: gives up until the next round.
RESTART_WAIT_MS = 100


class WalCheckpoints:
    """Passive checkpoints of one SQLite database, every ``interval`` seconds, on a daemon thread.

    ``connect`` opens a connection to the database (the engine's own connection arguments); it is
    called only while the file exists, so a database deleted under a running process (a test's
    temporary directory) is never created again empty by its checkpoints."""

    def __init__(
        self,
        path: str,
        connect: Callable[[], sqlite3.Connection],
        interval: float = CHECKPOINT_INTERVAL,
        restart_pages: int = RESTART_PAGES,
    ) -> None:
        self.path = path
        self.interval = interval
        self.restart_pages = restart_pages
        self._connect = connect
        self._connection: sqlite3.Connection | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None  # the last failure logged, so it is logged once

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoints", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (after the checkpoint it is running, if any) and close its connection."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One passive checkpoint, then a restart when the log is longer than ``restart_pages``:
        SQLite's (busy, frames in the log, frames copied) of the last, or None when the database
        file does not exist (yet, or any more)."""
        if self._connection is None:
            if not os.path.exists(self.path):
                return None
            connection = self._connect()
            try:
                # Only a RESTART checkpoint waits (PASSIVE never does), on this thread.
                connection.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        result = self._run_checkpoint("PASSIVE")
        if result[1] > self.restart_pages:
            result = self._run_checkpoint("RESTART")
        return result

    def _run_checkpoint(self, mode: str) -> tuple[int, int, int]:
        assert self._connection is not None
        busy, frames, copied = self._connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        wait = self.interval
        try:
            while not self._stopping.wait(wait):
                frames = self._once()
                # While commits come fast (a storm writes some 18,000 pages a second on the
                # 2-core box), sooner: the log is restarted before it grows far past its limit.
                long_log = frames is not None and frames > self.restart_pages // 4
                wait = self.interval / 8 if long_log else self.interval
        finally:
            self._close()

    def _once(self) -> int | None:
        """One round; the log's length in pages, None if not known."""
        try:
            result = self.checkpoint()
        except sqlite3.Error as exc:
            if busy_error(exc):  # another process is checkpointing: its copy is as good as ours
                return None
            # The file gone or unreadable: try again next time on a new connection. SQLite's
            # automatic checkpoints are off on the role's connections, so a failure that lasts
            # is worth a warning, once.
            self._close()
            failure = f"{type(exc).__name__}: {exc}"
            if failure != self._failing:
                log.warning("WAL checkpoint of %s failed: %s", os.path.basename(self.path), failure)
            self._failing = failure
            return None
        if self._failing is not None:
            log.info("WAL checkpoints of %s work again", os.path.basename(self.path))
            self._failing = None
        return None if result is None else result[1]

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
