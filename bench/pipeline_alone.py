"""The worker's own steps over alert records, in this process: no Kafka, no faust, no relay.

The ceiling of sevflow's work per alert on a store, for two workloads over the same store:

- **fresh**: N alerts of G groups, interleaved (alert *i* in group *i* mod G): every record is
  a new alert, so a batch of 500 reads and writes up to 500 incidents;
- **re-sent**: then N more records, as Alertmanager sends them while the groups keep firing: it
  re-sends every firing group each ``group_interval``, so 90 % are repeats of alerts already
  firing (they change nothing) and 10 % new alerts joining their groups' incidents.

Beside them, the raw-client baseline: the SQL the fresh phase ran, statements and parameters as
the driver got them, replayed on an empty store by the database's own driver with nothing else
(bench/store_floor.py): the store's part of the pipeline's time, which no Python change removes.

Each figure is given in alerts/s of wall time and in alerts per CPU-second of this process (the
box is shared: the CPU figure moves less with the neighbours' load). SQLite (a fresh file) and
PostgreSQL (a throw-away database on the server of ``--postgres``, dropped afterwards) in one run.

Usage: .venv/bin/python -m bench.pipeline_alone [--alerts 20000] [--groups 500] [--postgres URL]
"""

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench.store_floor import Recording, counts, replay
from models.alert import AlertRecord
from models.fingerprint import fingerprint
from models.settings import Settings
from sevflow.roles.collector import settle_collector
from store.db import async_engine, sync_engine
from store.incidents import IncidentStore
from store.migrate import upgrade
from streams.escalation import load_policy
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import throwaway_database

__all__ = ["POSTGRES", "EnvFor", "measure", "pipeline_alone", "report", "resent", "store_for"]

#: The worker's environment for a store URL and a data directory (bench.pipeline_bench).
EnvFor = Callable[[str, Path], dict[str, str]]

#: The test PostgreSQL server (scripts/postgres.sh); the benchmark's databases are made beside.
POSTGRES = "postgresql://sevflow:sevflow@127.0.0.1:15432/sevflow_test"
#: Share of the re-sent workload's records that repeat an alert already firing.
REPEATS = 0.9


def resent(first: Sequence[AlertRecord], n: int, after: timedelta) -> list[AlertRecord]:
    """``n`` records sent ``after`` the alerts of ``first``: 90 % re-sends of them (same
    status, later), 10 % new alerts of the same groups (their labels with a new instance)."""
    out = []
    every = round(1 / (1 - REPEATS))
    for i in range(n):
        base = first[(i * 7919) % len(first)]
        at = base.received_at + after + timedelta(microseconds=i)
        if i % every == every - 1:
            labels = {**base.labels, "instance": f"new-{i}"}
            out.append(
                base.model_copy(
                    update={"labels": labels, "fingerprint": fingerprint(labels), "received_at": at}
                )
            )
        else:
            out.append(base.model_copy(update={"received_at": at}))
    return out


async def pipeline_alone(
    env: dict[str, str],
    phases: Sequence[Sequence[bytes]],
    batch_size: int,
    after_first: Callable[[list[Any]], object] | None = None,
) -> list[tuple[float, float]]:
    """(alerts/s, alerts per CPU-second) of the worker's own steps over each phase's encoded
    records in turn, on one store: the pipeline the worker builds from the same settings (its
    rules, lifecycle policy, grouping and escalation policy), fed batches of ``batch_size``.
    ``after_first`` is given the SQL log of the first phase (bench/store_floor.py) before the
    next phase starts (not timed)."""
    with mock.patch.dict(os.environ, env, clear=True):
        settings = Settings()
    url = settings.sqlalchemy_url()
    migrator = sync_engine(url)
    try:
        upgrade(migrator)
    finally:
        migrator.dispose()
    engine = async_engine(url, checkpoint_in_background=True)  # as the worker's
    pipeline = Pipeline(
        IncidentStore(engine),
        load_rules(settings.rules_file),
        settings.lifecycle_policy(),
        settings.group_by,
        load_policy(settings.escalation_policy_file, settings.playbook_times()),
    )
    settle_collector()  # (as the worker does once started)
    figures = []
    recording = Recording(engine.sync_engine)
    try:
        for values in phases:
            wall, cpu = time.perf_counter(), time.process_time()
            with recording.on() if not figures and after_first else contextlib.nullcontext():
                for i in range(0, len(values), batch_size):
                    batch = [AlertRecord.model_validate_json(v) for v in values[i : i + batch_size]]
                    await pipeline.process_alerts(batch)
            figures.append(
                (
                    len(values) / (time.perf_counter() - wall),
                    len(values) / (time.process_time() - cpu),
                )
            )
            if recording.log and after_first is not None:
                log, recording.log = recording.log, []
                after_first(log)
        return figures
    finally:
        recording.close()
        await engine.dispose()


@contextlib.contextmanager
def store_for(server_url: str | None, sqlite_file: Path) -> Iterator[str]:
    """An empty incident store: a throw-away database on the PostgreSQL server of ``server_url``
    (never the database it names), or a new SQLite file."""
    if server_url is None:
        yield f"sqlite:///{sqlite_file}"
        return
    with throwaway_database(server_url, "sevflow_bench") as url:
        yield url


def measure(
    env_for: EnvFor, records: Sequence[AlertRecord], base: Path, server_url: str | None, batch: int
) -> list[tuple[float, float]]:
    """The fresh and re-sent figures on one store (SQLite, or PostgreSQL on ``server_url``), then
    the store's floor under the fresh phase (bench/store_floor.py), each in alerts/s and alerts
    per CPU-second of this process."""
    again = resent(records, len(records), timedelta(minutes=5))
    phases = [[r.to_bytes() for r in records], [r.to_bytes() for r in again]]
    place = base / ("pg" if server_url else "sqlite")
    place.mkdir()
    floor: list[tuple[float, float]] = []
    with store_for(server_url, place / "alone.db") as url:

        def after_fresh(log: list[Any]) -> None:
            expected = counts(url)
            with store_for(server_url, place / "floor.db") as empty:
                wall, cpu = replay(empty, log, expected)
            floor.append((len(records) / wall, len(records) / cpu))

        figures = asyncio.run(pipeline_alone(env_for(url, place), phases, batch, after_fresh))
    return [*figures, *floor]


def report(store: str, figures: Sequence[tuple[float, float]]) -> str:
    """Two lines: the pipeline's figures, then the store's floor under the fresh phase."""
    (fw, fc), (rw, rc), (sw, sc) = figures
    return (
        f"sevflow pipeline alone, {store:10s} fresh {fw:7.0f} alerts/s ({fc:7.0f}/CPU-s); "
        f"re-sent (90 % repeats) {rw:7.0f} alerts/s ({rc:7.0f}/CPU-s)\n"
        f"  its SQL alone, {store:10s} the fresh phase's statements replayed by the driver: "
        f"{sw:7.0f} alerts/s ({sc:7.0f}/CPU-s); the pipeline's fresh figure is "
        f"{fw / sw:.2f} of it ({fc / sc:.2f} per CPU-s)"
    )


def main() -> None:
    from bench.pipeline_bench import records, worker_env

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--postgres", default=POSTGRES, help="PostgreSQL server ('' to skip)")
    args = parser.parse_args()
    batch = records(args.alerts, args.groups, datetime.now(UTC))

    def env_for(url: str, data_dir: Path) -> dict[str, str]:
        return worker_env("127.0.0.1:1", "bench-alone", url, data_dir, args.batch_size)

    with tempfile.TemporaryDirectory(prefix="sevflow-alone-") as tmp:
        for server in [None, args.postgres or None] if args.postgres else [None]:
            figures = measure(env_for, batch, Path(tmp), server, args.batch_size)
            print(report("PostgreSQL" if server else "SQLite", figures), flush=True)


if __name__ == "__main__":
    main()
