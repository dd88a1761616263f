"""The incident store's floor under the worker's steps: the rows they wrote, written again by the
database's own driver with nothing else around it. The raw-client baseline of
``bench.pipeline_alone``.

After the pipeline's fresh phase, the alerts, incidents and events it left in its store are read
back and written into an empty store of the same schema, with the very statements the pipeline
uses (``store.driver_sql``'s upserts and inserts, compiled for the dialect) through ``sqlite3`` or
psycopg, one transaction per batch: a batch's alert rows, its share of the events (in storage
order) and the incidents those events belong to, in their final form. That is as many row writes
as the pipeline made, and about the same bytes (the incidents' final documents are at least as
long as the ones written on the way). Nothing is read, decided or serialised: what is left is
the database's and its driver's work, the part of the pipeline's time no Python change can take.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table

from store.db import sync_engine
from store.driver_connect import DriverConnection, driver_connection
from store.driver_sql import DriverStatement, insert_ignoring, upsert
from store.incident_rows import ALERT_FIELDS, EVENT_COLUMNS, INCIDENT_COLUMNS
from store.migrate import upgrade
from store.schema import alerts, incident_events, incidents

__all__ = ["StoredRows", "read_rows", "write_rows"]

#: The JSON columns: read back as text (psycopg would parse them), written as the pipeline gives them.
_JSON_COLUMNS = frozenset({"labels", "annotations"})


@dataclass(frozen=True)
class StoredRows:
    """What the pipeline left in a store, as its driver returns the columns it writes."""

    alerts: list[dict[str, Any]]
    incidents: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]


def _select(
    conn: DriverConnection, table: str, columns: Sequence[str], order: str
) -> list[dict[str, Any]]:
    wanted = [f"CAST({c} AS TEXT)" if c in _JSON_COLUMNS and not conn.sqlite else c for c in columns]
    cursor = conn.conn.cursor()
    cursor.execute(f"SELECT {', '.join(wanted)} FROM {table} ORDER BY {order}")
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def read_rows(url: str) -> StoredRows:
    """The alert, incident and event rows of the store at ``url``: alerts in their first
    receipt's order, events in storage order."""
    conn = driver_connection(url, read_only=True)
    try:
        found = _select(conn, "alerts", ALERT_FIELDS, "first_received_at, fingerprint")
        incident_rows = _select(conn, "incidents", INCIDENT_COLUMNS, "id")
        events = _select(conn, "incident_events", EVENT_COLUMNS, "position")
    finally:
        conn.close()
    return StoredRows(found, {row["id"]: row for row in incident_rows}, events)


def _statements(url: str) -> tuple[DriverStatement, DriverStatement, DriverStatement]:
    """The pipeline's own statements for the dialect of ``url`` (the store migrated first)."""
    engine = sync_engine(url)
    try:
        upgrade(engine)
        dialect = cast(Any, engine)  # (the compilers read only ``.dialect``)

        def write(table: Table, key: str, columns: Sequence[str], replace: bool) -> DriverStatement:
            return (upsert if replace else insert_ignoring)(dialect, table, key, columns)

        return (
            write(alerts, "fingerprint", ALERT_FIELDS, True),
            write(incidents, "id", INCIDENT_COLUMNS, True),
            write(incident_events, "event_id", EVENT_COLUMNS, False),
        )
    finally:
        engine.dispose()


def _values(statement: DriverStatement, rows: Sequence[dict[str, Any]]) -> list[Any]:
    if statement.order is None:
        return list(rows)
    return [tuple(row[c] for c in statement.order) for row in rows]


def write_rows(url: str, rows: StoredRows, batch: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to write ``rows`` into the empty store at
    ``url`` in transactions of ``batch`` alerts."""
    alert_sql, incident_sql, event_sql = _statements(url)
    conn = driver_connection(url)
    chunks = max(1, -(-len(rows.alerts) // batch))
    try:
        cursor = conn.conn.cursor()
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(chunks):
            events = rows.events[len(rows.events) * i // chunks : len(rows.events) * (i + 1) // chunks]
            touched = sorted({e["incident_id"] for e in events})
            if conn.sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            for statement, chunk in (
                (alert_sql, rows.alerts[i * batch : (i + 1) * batch]),
                (incident_sql, [rows.incidents[t] for t in touched]),
                (event_sql, events),
            ):
                if chunk:
                    cursor.executemany(statement.sql, _values(statement, chunk))
            if conn.sqlite:
                cursor.execute("COMMIT")
            else:
                conn.conn.commit()
        spent = time.perf_counter() - wall, time.process_time() - cpu
        _check_written(conn, rows)
        return spent
    finally:
        conn.close()


def _check_written(conn: DriverConnection, rows: StoredRows) -> None:
    """Every row is in the target store: the floor did the whole work or says it did not."""
    cursor = conn.conn.cursor()
    for table, expected in (
        ("alerts", len(rows.alerts)),
        ("incidents", len(rows.incidents)),
        ("incident_events", len(rows.events)),
    ):
        cursor.execute(f"SELECT count(*) FROM {table}")
        (found,) = cursor.fetchone()
        if found != expected:
            raise SystemExit(f"store floor: {found} rows in {table} where {expected} were written")
