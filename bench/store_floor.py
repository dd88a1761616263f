"""The incident store's floor under the worker's steps: the very SQL they ran, replayed by the
database's own driver with nothing else around it. The raw-client baseline of
``bench.pipeline_alone``.

While the pipeline runs its fresh phase, every statement its engine hands the driver is recorded
as the driver got it (:class:`Recording`: SQLAlchemy's ``before_cursor_execute``, so SQL text and
parameters after every conversion, one ``executemany`` as one entry) with each commit. The floor
replays that log on an empty store of the same schema through ``sqlite3`` or psycopg (reads
fetched, writes the same rows in the same transactions) and checks the replay left the same rows.
Nothing is decided, validated or serialised in the replay: what is left is the database's and its
driver's part of the pipeline's time, which no change of the Python around it can take away.
On SQLite the replay's connection leaves the copying of the write-ahead log for later, as the
worker's engine hands it to a thread (store/wal_checkpoints.py).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from store.db import sync_engine
from store.driver_connect import DriverConnection, driver_connection
from store.migrate import upgrade

__all__ = ["COMMIT", "Recording", "counts", "replay"]

#: A commit in the log.
COMMIT = None
#: The tables whose rows a replay must leave as the pipeline did.
_CHECKED = ("alerts", "incidents", "incident_events", "incident_groups")


class Recording:
    """The statements and commits of an engine, while :meth:`on` is active."""

    def __init__(self, engine: Engine) -> None:
        self.log: list[tuple[str, Any, bool] | None] = []
        self._engine = engine
        self._active = False
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(
        self, _conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if self._active:
            self.log.append((sql, parameters, many))

    def _commit(self, _conn: Any) -> None:
        if self._active:
            self.log.append(COMMIT)

    @contextmanager
    def on(self) -> Iterator[None]:
        self._active = True
        try:
            yield
        finally:
            self._active = False

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._statement)
        event.remove(self._engine, "commit", self._commit)


def counts(url: str) -> dict[str, int]:
    """The rows of each checked table in the store at ``url``."""
    conn = driver_connection(url, read_only=True)
    try:
        return _counts(conn)
    finally:
        conn.close()


def _counts(conn: DriverConnection) -> dict[str, int]:
    cursor = conn.conn.cursor()
    found = {}
    for table in _CHECKED:
        cursor.execute(f"SELECT count(*) FROM {table}")
        found[table] = int(cursor.fetchone()[0])
    if not conn.sqlite:
        conn.conn.rollback()
    return found


def replay(
    url: str, log: list[tuple[str, Any, bool] | None], expected: dict[str, int]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to replay ``log`` on the empty store at
    ``url`` (migrated first); ``expected``: the rows the pipeline left (:func:`counts`)."""
    engine = sync_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    conn = driver_connection(url)
    try:
        cursor = conn.conn.cursor()
        if conn.sqlite:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        wall, cpu = time.perf_counter(), time.process_time()
        for entry in log:
            if entry is COMMIT:
                conn.conn.commit()
                continue
            sql, parameters, many = entry
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
                if cursor.description is not None:
                    cursor.fetchall()
        spent = time.perf_counter() - wall, time.process_time() - cpu
        found = _counts(conn)
    finally:
        conn.close()
    if found != expected:
        raise SystemExit(f"store floor: the replay left {found}, the pipeline {expected}")
    return spent
