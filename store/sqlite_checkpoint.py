"""Write-ahead-log checkpoints of an SQLite store, on a thread of their own.

Why: in WAL mode SQLite copies the log back into the database file (a checkpoint) on the commit
that takes the log past ``wal_autocheckpoint`` pages, 1000 by default. A worker batch writes a
few hundred pages, so every second or third commit also copied and synced megabytes, on the
event loop's thread (store/sqlite_inline.py runs SQLite calls there): about 40 µs per alert, a
sixth of the pipeline's time.

:class:`WalCheckpointer` runs a PASSIVE checkpoint every :data:`CHECKPOINT_INTERVAL` seconds
from a daemon thread with its own connection. SQLite releases the GIL while it copies, so the
work runs beside the loop on another core, and a passive checkpoint neither waits for nor blocks
readers and writers. The engine's own connections keep an automatic checkpoint at a much larger
log (:data:`AUTOCHECKPOINT_PAGES`): should the thread fall behind or stop, the log stays bounded
and commits checkpoint as before.
"""

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["AUTOCHECKPOINT_PAGES", "CHECKPOINT_INTERVAL", "WalCheckpointer"]

log = logging.getLogger(__name__)

#: How often the thread checkpoints (seconds). An idle database makes it a few reads of the
#: log's header.
CHECKPOINT_INTERVAL = 0.5
#: ``wal_autocheckpoint`` of connections served by a checkpointer: 10,000 pages of 4 KiB (40 MiB).
AUTOCHECKPOINT_PAGES = 10_000


class WalCheckpointer:
    """Checkpoints one SQLite database file's write-ahead log until stopped."""

    def __init__(self, path: Path, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"sqlite-checkpoint:{self.path.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread (a checkpoint in progress finishes first)."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One passive checkpoint: (1 if it could not start, log frames, frames copied)."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stopped.wait(self.interval):
                try:
                    if conn is None:
                        if not self.path.exists():
                            continue  # not created yet (the schema is made by another step)
                        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
                    self.checkpoint(conn)
                except sqlite3.Error as exc:
                    # Nothing is at stake: commits checkpoint on their own past the larger limit.
                    log.debug("SQLite checkpoint of %s skipped: %s", self.path, exc)
        finally:
            if conn is not None:
                conn.close()
