"""What the roles check and prepare before they start: the store's schema, the files the worker
reads (rules, escalation policy, runbooks, probes), the topics (created through
:func:`kafka_admin.topics.ensure_topics`, as every sevflow topic is)."""

import asyncio
import logging
import signal
import sys
import time
from types import FrameType

from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from kafka_admin.topics import TopicSettingsError, ensure_topics
from models.settings import Settings
from receiver.auth import WebhookAuth
from sevflow.listeners import listen_problem
from sevflow.problems import store_problem
from store.db import UnsupportedDatabaseError, sync_engine
from store.schema_version import at_head
from streams.runbooks import load_runbooks

__all__ = [
    "data_dir_problem",
    "init_db",
    "listeners",
    "listeners_problem",
    "metrics_auth",
    "wait_for_topics",
    "worker_files_problem",
]

log = logging.getLogger("sevflow")


def metrics_auth(settings: Settings) -> WebhookAuth | None:
    """What ``/metrics`` requires: the bearer ``SEVFLOW_METRICS_TOKEN``, or nothing when unset."""
    return WebhookAuth(tokens=[settings.metrics_token]) if settings.metrics_token else None


def init_db(settings: Settings) -> int:
    """Bring the store's schema to the latest migration (idempotent); 2 for an unusable URL, 1
    when the store cannot be reached or migrated. Alembic is loaded only when the store is not
    current already (store/schema_version.py). A store a later release migrated is used as it
    is, with a warning (:class:`store.migrate.NewerStore`)."""
    try:
        engine = sync_engine(settings.sqlalchemy_url())
    except UnsupportedDatabaseError as exc:
        print(f"sevflow: SEVFLOW_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    try:
        if not at_head(engine):
            from store.migrate import NewerStore, upgrade

            try:
                upgrade(engine)
            except NewerStore as exc:  # (a rolling upgrade under way, or a rollback)
                log.warning("%s: used as it is, not migrated (migrations only add)", exc)
    except SQLAlchemyError as exc:
        print(f"sevflow: cannot prepare the incident store: {store_problem(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    log.info("incident store ready (%s)", engine.url.get_backend_name())
    return 0


def data_dir_problem(settings: Settings) -> str | None:
    """Why ``SEVFLOW_DATA_DIR`` cannot be made (a folder under /proc, a file in its path, no
    permission), or None once it exists: ``run`` keeps its roles' status there and the worker
    its own folder, even with the store on PostgreSQL."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"SEVFLOW_DATA_DIR {settings.data_dir}: cannot be created ({exc.strerror or exc})"
    return None


#: The hosts that listen on every address: a port taken on them is taken on any.
_ANY_ADDRESS = ("", "0.0.0.0", "::")  # noqa: S104 (compared with, never bound)


def listeners(settings: Settings, role: str) -> list[tuple[str, int, str]]:
    """The HTTP listeners ``role`` (receiver, sinks) serves with ``settings``, each as host, port
    and the variables that choose them: the receiver's internal one, its public one for vendor
    callbacks when a callback secret is set, and the sinks' built-in status page unless Atlassian
    Statuspage is configured. (``/metrics`` of the worker and the sinks is left out: a port in
    use there is a warning, and the role serves without it.)"""
    if role == "receiver":
        found = [(settings.http_host, settings.http_port, "SEVFLOW_HTTP_HOST, SEVFLOW_HTTP_PORT")]
        secrets = [settings.slack_signing_secret, *settings.pagerduty_webhook_secrets]
        if any(s is not None and s.get_secret_value().strip() for s in secrets):  # (as served)
            names = "SEVFLOW_CALLBACKS_HOST, SEVFLOW_CALLBACKS_PORT"
            found.append((settings.callbacks_host, settings.callbacks_port, names))
        return found
    if role == "sinks" and not settings.statuspage_configured():
        names = "SEVFLOW_STATUS_PAGE_HOST, SEVFLOW_STATUS_PAGE_PORT"
        return [(settings.status_page_host, settings.status_page_port, names)]
    return []


def listeners_problem(settings: Settings, *roles: str) -> str | None:
    """Why a listener of ``roles`` cannot listen (:func:`sevflow.listeners.listen_problem`), or
    None: checked before the role, or ``run``, starts, so a port in use stops it at once with
    one line instead of a traceback (and ``run``'s restarts of the role, five times over)."""
    wanted = [listener for role in roles for listener in listeners(settings, role)]
    for index, (host, port, names) in enumerate(wanted):
        for other_host, other_port, other_names in wanted[:index]:
            shared = host == other_host or host in _ANY_ADDRESS or other_host in _ANY_ADDRESS
            if port and port == other_port and shared:
                return f"{other_names} and {names} ask for the same port, {port}"
        if (problem := listen_problem(host, port, names)) is not None:
            return problem
    return None


def worker_files_problem(settings: Settings) -> str | None:
    """Why a file the worker reads at start cannot be used, naming the file and the line: the
    rules, the escalation policy, the runbooks, the verification probes (the teams file is
    sevflow.teams.teams_problem's). None: all can be used. Checked before a role starts, so a
    bad file stops ``run`` and ``worker`` at once, with its message alone, instead of a
    traceback at every restart of the worker while the receiver takes alerts nobody processes.
    Each loader's error is a ``ValueError`` (``RulesError``, ``PolicyError``, ``RunbookError``,
    ``ProbeFileError``, two probes for the same matchers)."""
    # Imported here: ``sevflow run`` checks the files before it starts its roles.
    from streams.escalation import load_policy
    from streams.probes import load_probes
    from streams.rules import load_rules

    try:
        load_rules(settings.rules_file)
        load_policy(settings.escalation_policy_file, settings.playbook_times())
        load_runbooks(settings.runbooks_dir)
        load_probes(settings.verify_probes, settings.verify_file, settings.rules_file)
    except ValueError as exc:
        return str(exc)
    return None


def _ensure_all(settings: Settings) -> None:
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap,
            [settings.topic_spec(topic) for topic in settings.created_topics()],
            settings.kafka_timeout_seconds,
        )
    )


def wait_for_topics(settings: Settings, role: str = "worker", attempts: int = 60) -> int | None:
    """Create sevflow's topics before a role subscribes (faust does not create source topics).

    Waits for Kafka up to ``attempts`` seconds, so a role started with the broker is not lost
    (a role that exits is only started again after a backoff).
    None once the topics exist as the settings ask (:mod:`models.topics`); else the exit status:
    2 when a topic differs from the settings (each difference named), 1 when Kafka stayed
    unreachable, 0 when SIGINT or SIGTERM asked to stop meanwhile (asyncio's own SIGINT handling
    cancelled the attempt in progress, which the Kafka client took for one more failure, so
    Ctrl-C was ignored).
    """
    # A plain list, not a threading.Event: Event.set() in a signal handler takes the Event's lock,
    # which the interrupted stop.wait() may hold, and the role hung for good on SIGTERM.
    asked: list[int] = []

    def stopping(signum: int, _frame: FrameType | None) -> None:
        asked.append(signum)

    ready = False
    previous = {signum: signal.signal(signum, stopping) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for attempt in range(attempts):
            try:
                _ensure_all(settings)
            except TopicSettingsError as exc:
                print(f"sevflow {role}: Kafka topics: {exc}", file=sys.stderr)
                return 2
            except (OSError, TimeoutError, KafkaError) as exc:
                if attempt == 0:
                    log.warning("waiting for Kafka at %s (%s)", settings.kafka_bootstrap, exc)
                if _asked_within(asked, 1.0):
                    break
            else:
                ready = True
                break
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if asked:
        log.info("%s stopped before it started", role)
        return 0
    if ready:
        return None
    print(f"sevflow: Kafka at {settings.kafka_bootstrap} is not reachable", file=sys.stderr)
    return 1


def _asked_within(asked: list[int], seconds: float) -> bool:
    """Sleep ``seconds`` in tenths; true as soon as a signal handler appended to ``asked``."""
    for _ in range(max(1, round(seconds * 10))):
        if asked:
            return True
        time.sleep(0.1)
    return bool(asked)
