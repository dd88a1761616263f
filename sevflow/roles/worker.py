"""``sevflow worker``: the stream worker, built from :class:`Settings` in :func:`build_worker`.

Read top to bottom: the engine and the incident store; the rules, the lifecycle and escalation
policies and the runbooks (a bad file fails here, at start, naming its line); the pipeline
(streams/pipeline.py: the order of the steps); the outbox relay's process, handed its settings;
the lag probe; then streams/app.py's faust agents and timers around them. :func:`run_worker`
prepares the store and the topics, serves the worker's metrics and runs it under faust.
"""

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from models.clock import Clock, utc_now
from models.settings import Settings
from models.teams import Teams
from sevflow.listeners import start_metrics_server
from sevflow.roles.collector import settle_collector
from sevflow.roles.startup import (
    data_dir_problem,
    init_db,
    wait_for_topics,
    worker_files_problem,
)
from sevflow.teams import load_teams, teams_problem
from store.db import async_engine
from store.incidents import IncidentStore
from streams.escalation import load_policy
from streams.metrics import LagProbe, WorkerMetrics
from streams.pipeline import Pipeline
from streams.probes import load_probes
from streams.relay import RelaySettings
from streams.relay_process import RelayProcess
from streams.rules import load_rules
from streams.runbooks import load_runbooks, team_runbooks

if TYPE_CHECKING:
    import faust

__all__ = ["WORKER_STOP_DEADLINE", "build_worker", "run_worker"]

log = logging.getLogger("sevflow")

#: Seconds a worker asked to stop (SIGINT/SIGTERM) may take before the process exits anyway. A clean
#: stop takes a second or two (faust waits for the events in flight and commits their offsets), but
#: faust waits for ever when Kafka is down (its consumer's last commit never returns) or while an
#: agent waits for the database. Exiting then loses nothing: offsets are committed only for applied
#: records, the rest are delivered again and applying them again changes nothing. Below the 30 s
#: that Kubernetes and most supervisors give before SIGKILL, so the lease is at least tried.
WORKER_STOP_DEADLINE = 20.0


def build_worker(
    settings: Settings,
    *,
    metrics: WorkerMetrics | None = None,
    clock: Clock = utc_now,
    teams: Teams | None = None,
    **overrides: Any,
) -> "faust.App":
    """The worker's faust app and everything it uses; ``teams``: loaded and checked at start by
    the caller (sevflow/teams.py), None: one default team; ``overrides``: extra faust settings."""
    # faust patches the event loop policy on import: imported only where a worker is built.
    from streams.app import create_app

    stats = metrics or WorkerMetrics()
    # (store/wal_checkpoints.py: a commit that copied the log held the loop for the copy)
    engine = async_engine(settings.sqlalchemy_url(), checkpoint_in_background=True)
    store = IncidentStore(engine)
    pipeline = Pipeline(
        store,
        load_rules(settings.rules_file),
        settings.lifecycle_policy(),
        settings.group_by,
        # A bad policy, runbook or probe fails at start, naming its file and line.
        load_policy(
            settings.escalation_policy_file,
            settings.playbook_times(),
            emailing=settings.email_configured(),
            teams=teams,  # each team's own policy and business hours (README "Teams")
        ),
        team_runbooks(teams, load_runbooks(settings.runbooks_dir, settings.runbooks_url)),
        probes=load_probes(settings.verify_probes, settings.verify_file, settings.rules_file),
        teams=teams,
    )
    relay = RelayProcess(RelaySettings.of(settings), on_published=stats.events_published.inc)
    lag = LagProbe(
        settings.kafka_bootstrap, settings.app_id, [settings.alerts_topic, settings.commands_topic]
    )
    return create_app(settings, pipeline, relay, lag, clock=clock, metrics=stats, **overrides)


def _serve_metrics(settings: Settings, metrics: WorkerMetrics) -> None:
    if not settings.worker_metrics_port:
        return
    try:
        start_metrics_server(
            settings.worker_metrics_port, settings.http_host, metrics.registry, settings.metrics_token
        )
    except OSError as exc:  # a second worker on the host: run, say why there is no /metrics
        log.warning(
            "worker metrics not served on %s:%d: %s (set SEVFLOW_WORKER_METRICS_PORT)",
            settings.http_host,
            settings.worker_metrics_port,
            exc.strerror,
        )


def run_worker(settings: Settings) -> int:  # noqa: RET503 (the worker call never returns)
    """Run the stream worker until SIGINT/SIGTERM."""
    problem = data_dir_problem(settings) or worker_files_problem(settings) or teams_problem(settings)
    if problem is not None:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
    status = init_db(settings)
    if status:
        return status
    if (waited := wait_for_topics(settings)) is not None:
        return waited
    # The worker stays on asyncio's own loop. With uvloop (faust's ``--loop uvloop``) a faust agent
    # doing nothing took records 20% faster, but bench/e2e_latency.py's webhook-to-page p50 went
    # from about 90 ms to 240 ms.
    import faust  # faust patches the event loop policy on import: only for the worker

    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    metrics = WorkerMetrics()
    _serve_metrics(settings, metrics)
    app = build_worker(settings, metrics=metrics, teams=load_teams(settings))
    settle_collector()

    class Worker(faust.Worker):
        """faust's worker, with a deadline on stopping (:data:`WORKER_STOP_DEADLINE`)."""

        def _schedule_shutdown(self, signum: signal.Signals) -> None:
            if not self._signal_stop_time:
                timer = threading.Timer(WORKER_STOP_DEADLINE, _abandon_stop)
                timer.daemon = True
                timer.start()
            super()._schedule_shutdown(signum)

    worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # faust's terminal spinner sets the root logger to DEBUG whenever the level is WARNING or
    # above, so every library's debug message would be formatted; a service has no terminal.
    worker.spinner = None
    worker.execute_from_commandline()  # never returns: exits the process when the worker stops


def _abandon_stop() -> None:
    """The worker did not stop within :data:`WORKER_STOP_DEADLINE`: exit without it (status 1)."""
    log.error(
        "worker did not stop within %.0fs (Kafka or the database unreachable?); exiting: records "
        "not committed are delivered again",
        WORKER_STOP_DEADLINE,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(1)
