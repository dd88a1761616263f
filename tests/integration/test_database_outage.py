"""The store's connections are cut, or its file locked, while every role runs.

``sevflow run`` on the tests' broker and a throw-away PostgreSQL database, PagerDuty faked, a sender
that behaves like Alertmanager (tests/integration/test_kafka_outage.py). Mid-stream every backend
of the test's database is terminated (``pg_terminate_backend``), again and again, as a failover
or a restarted connection pooler would; on SQLite another process holds the file's exclusive
lock. Each outage lasts until it has been felt, not for a set time: on PostgreSQL until
the worker has reported a cut (its "failed (…); retrying" warning) and notifications kept arriving
meanwhile; on SQLite, where the worker waits on the lock without a word (store/sqlite_inline.py),
until notifications have piled up behind the lock. Expected: the worker retries and
loses nothing, the sinks keep their delivery log consistent (each incident paged once: a trigger
whose confirmation was cut is sent again with its dedup_key, as after a crash), no role
exits, and the receiver's incident API answers 200 or 503 throughout, never 500.
"""

import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.db import normalise_url
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import wait_for
from testkit.store_backends import fresh_database
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert

#: Notifications accepted while the store is cut off, before the outage ends.
BEHIND_THE_OUTAGE = 30
#: What the worker logs (faust's format) when a store call failed and will be retried
#: (streams/failures.py): "[…] [pid] [WARNING] applying 99 alerts failed (…); retrying in 0.2s".
WORKER_REPORT = re.compile(rb"\[WARNING\] .+ failed \(.+\); retrying in ")
#: How long an outage may take to be felt before the test fails.
OUTAGE_LIMIT = 60.0


def run_through_outage(
    tmp_path: Path,
    kafka_bootstrap: str,
    url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: Any,
    outage: Callable[[Callable[[], None], Callable[[], bool]], int],
) -> None:
    """``sevflow run`` under a stream of notifications while ``outage(probe, felt)`` cuts the
    store off (calling ``probe`` now and then, returning how many cuts it made) until ``felt()``,
    then the checks. ``felt()``: :data:`BEHIND_THE_OUTAGE` notifications were accepted since the
    outage began, and on PostgreSQL the worker reported the store unreachable."""
    run = PagedRun(tmp_path, kafka_bootstrap, url, fake_pagerduty, tls_cert)
    sevflow = run.sevflow
    api = httpx.Client(
        base_url=sevflow.url, headers={"Authorization": f"Bearer {sevflow.api_token}"}, timeout=45
    )
    api_statuses: Counter[int] = Counter()

    def probe() -> None:
        api_statuses[api.get("/api/incidents").status_code] += 1

    sender = run.sender(interval=0.05)
    try:
        sevflow.start()
        sender.start()
        wait_for(lambda: len(run.triggered()) >= 5, 60, f"the first pages (log {sevflow.log_path})")
        at_start = len(sender.accepted)
        log_start = sevflow.log_path.stat().st_size
        reported = url.startswith("sqlite")  # the worker waits on SQLite's lock silently

        def felt() -> bool:
            nonlocal reported
            if not reported:
                with sevflow.log_path.open("rb") as log:
                    log.seek(log_start)
                    reported = any(WORKER_REPORT.search(line) for line in log)
            return reported and len(sender.accepted) >= at_start + BEHIND_THE_OUTAGE

        cuts = outage(probe, felt)
        at_end = len(sender.accepted)
        wait_for(lambda: len(sender.accepted) >= at_end + 20, 60, "notifications accepted after")
        accepted = run.accepted_by(sender)
        run.wait_until_settled(accepted)
        assert sevflow.process is not None
        assert sevflow.process.poll() is None, "a role exited (sevflow run stops with it)"
        print(f"sent {len(accepted)}, {cuts} cuts, API answers {api_statuses}")
        assert cuts > 0
        assert set(api_statuses) <= {200, 503}, api_statuses
        run.check_once(accepted, triggers_resent=True)
        triggers = Counter(
            e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger"
        )
        print(f"PagerDuty triggers sent again after a cut: {sum(triggers.values()) - len(triggers)}")
    finally:
        sender.stopping.set()
        api.close()
        run.close()


def test_backends_terminated_mid_stream_lose_and_double_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: Any,
) -> None:
    fresh_database(postgres_url, create=False)
    database = make_url(postgres_url).database
    # Another database of the same server: terminating must not cut the killer's own connection.
    killer = create_engine(
        normalise_url(postgres_url, asynchronous=False).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
    )

    def terminate_until_felt(probe: Callable[[], None], felt: Callable[[], bool]) -> int:
        terminated = 0
        deadline = time.monotonic() + OUTAGE_LIMIT
        while not felt():
            assert time.monotonic() < deadline, "the worker never reported a cut (or nothing came)"
            with killer.connect() as conn:
                terminated += len(
                    conn.execute(
                        text(
                            # sevflow's own connections: not an autovacuum worker or another
                            # superuser's (terminating those needs a superuser).
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :db AND pid <> pg_backend_pid() "
                            "AND usename = current_user AND backend_type = 'client backend'"
                        ),
                        {"db": database},
                    ).all()
                )
            probe()
            time.sleep(0.2)
        return terminated

    try:
        run_through_outage(
            tmp_path, kafka_bootstrap, postgres_url, fake_pagerduty, tls_cert, terminate_until_felt
        )
    finally:
        killer.dispose()


LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def test_sqlite_file_locked_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, kafka_bootstrap: str, fake_pagerduty: FakePagerDuty, tls_cert: Any
) -> None:
    path = tmp_path / "store.db"

    def lock_until_felt(probe: Callable[[], None], felt: Callable[[], bool]) -> int:
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert holder.stdin is not None
        # The API's read waits for the lock (store/sqlite_inline.py): asked from a thread, it is
        # answered once the lock is released.
        asking = threading.Thread(target=probe, daemon=True)
        try:
            assert holder.stdout.readline() == b"locked\n"
            asking.start()
            wait_for(felt, OUTAGE_LIMIT, "notifications accepted behind the lock")
        finally:
            holder.stdin.write(b"\n")
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
        asking.join(40)
        return 1

    run_through_outage(
        tmp_path, kafka_bootstrap, f"sqlite:///{path}", fake_pagerduty, tls_cert, lock_until_felt
    )
