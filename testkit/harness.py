"""Real processes for end-to-end tests: sevflow itself and Prometheus Alertmanager
(testkit/alertmanager.py), and a broker of a test's own (testkit/private_kafka.py).

Both run as child processes on free loopback ports with their own configuration and data
directories, and are stopped (SIGTERM, then SIGKILL) when the test ends. Their output goes to
files so a failing test can show it. ``sevflow_at_fakes`` and ``running`` assemble the stack the
end-to-end tests share: sevflow pointed at the vendor fakes, fed by Alertmanager.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.alertmanager import Alertmanager
from testkit.fakes.fixtures import ROUTING_KEY, SLACK_TOKEN, SP_KEY, SP_PAGE
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.local import REPO, free_port
from testkit.local_http import local_get
from testkit.private_kafka import PrivateKafka, read_topic
from testkit.processes import metric_sum, stop_process, wait_for

# What the tests and benchmarks import from here, wherever it lives.
__all__ = [
    "Alertmanager",
    "PrivateKafka",
    "Sevflow",
    "alertmanager_for",
    "metric_sum",
    "read_topic",
    "realtime_slack",
    "relay_lease_holder",
    "role_env",
    "running",
    "sevflow_at_fakes",
    "stored_alerts",
    "wait_for",
]


def role_env(
    bootstrap: str, prefix: str, database_url: str, data_dir: Path, **settings: str
) -> dict[str, str]:
    """The environment of a sevflow role a test or benchmark starts: this process's, less every
    SEVFLOW_* setting of the shell, with topics and a consumer group of its own (``prefix``), quiet
    logs and no metrics port; ``settings`` add or replace SEVFLOW_<NAME> values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    env.update(
        SEVFLOW_KAFKA_BOOTSTRAP=bootstrap,
        SEVFLOW_ALERTS_TOPIC=f"{prefix}-alerts",
        SEVFLOW_EVENTS_TOPIC=f"{prefix}-events",
        SEVFLOW_COMMANDS_TOPIC=f"{prefix}-commands",
        SEVFLOW_PROBE_RESULTS_TOPIC=f"{prefix}-probe-results",
        SEVFLOW_APP_ID=prefix,
        SEVFLOW_DATABASE_URL=database_url,
        SEVFLOW_DATA_DIR=str(data_dir),
        SEVFLOW_LOG_LEVEL="WARNING",
        SEVFLOW_WORKER_METRICS_PORT="0",
    )
    env.update({f"SEVFLOW_{name.upper()}": value for name, value in settings.items()})
    return env


def stored_alerts(engine: Any) -> int:
    """How many alerts the store behind ``engine`` (synchronous) holds; 0 before the worker has
    created its tables."""
    from sqlalchemy import func, select

    from store.schema import alerts

    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())
    except Exception:  # tables not created yet
        return 0


def relay_lease_holder(url: str) -> str | None:
    """Who holds the outbox relay's lease in the store at ``url`` ("" once given up; None before
    the worker has created its tables)."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.exc import OperationalError

    from store.db import normalise_url
    from store.schema import leases

    engine = create_engine(normalise_url(url, asynchronous=False))
    try:
        with engine.connect() as conn:
            query = select(leases.c.holder).where(leases.c.name == "outbox-relay")
            return conn.execute(query).scalar_one_or_none()
    except OperationalError:
        return None
    finally:
        engine.dispose()


@dataclass
class Sevflow:
    """``sevflow run`` (receiver + worker) as a child process."""

    workdir: Path
    kafka_bootstrap: str
    database_url: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: The API's token (read, write and admin scopes); the webhook token has the webhook scope only.
    api_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    port: int = field(default_factory=free_port)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    process: subprocess.Popen[bytes] | None = None
    #: ``run`` (receiver + worker) or ``receiver`` alone.
    command: str = "run"
    status_page_port: int = field(default_factory=free_port)
    #: The public listener of vendor callbacks (Slack, PagerDuty), when a callback secret is set.
    callbacks_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    sinks_metrics_port: int = field(default_factory=free_port)
    #: More ``SEVFLOW_*`` settings for this instance (they win over the defaults above).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def callbacks_url(self) -> str:
        return f"http://127.0.0.1:{self.callbacks_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sevflow.log"

    @property
    def alerts_topic(self) -> str:
        return f"e2e-alerts-{self.suffix}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
        env.update(
            SEVFLOW_KAFKA_BOOTSTRAP=self.kafka_bootstrap,
            SEVFLOW_ALERTS_TOPIC=f"e2e-alerts-{self.suffix}",
            SEVFLOW_APP_ID=f"e2e-{self.suffix}",
            SEVFLOW_DATABASE_URL=self.database_url,
            SEVFLOW_DATA_DIR=str(self.workdir / "data"),
            SEVFLOW_HTTP_PORT=str(self.port),
            SEVFLOW_CALLBACKS_PORT=str(self.callbacks_port),
            SEVFLOW_WEBHOOK_TOKENS=self.token,
            SEVFLOW_API_TOKENS=f"e2e:read,write,admin:{self.api_token}",
            # Every topic, consumer group and port of its own: tests never see each other.
            SEVFLOW_EVENTS_TOPIC=f"e2e-events-{self.suffix}",
            SEVFLOW_COMMANDS_TOPIC=f"e2e-commands-{self.suffix}",
            SEVFLOW_PROBE_RESULTS_TOPIC=f"e2e-probes-{self.suffix}",
            SEVFLOW_SINKS_DLQ_TOPIC=f"e2e-dlq-{self.suffix}",
            SEVFLOW_SINKS_GROUP_PREFIX=f"e2e-sink-{self.suffix}",
            SEVFLOW_STATUS_PAGE_PORT=str(self.status_page_port),
            SEVFLOW_WORKER_METRICS_PORT=str(self.worker_metrics_port),
            SEVFLOW_SINKS_METRICS_PORT=str(self.sinks_metrics_port),
        )
        env.update(self.extra_env)
        return env

    def start(self) -> "Sevflow":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sevflow", self.command],
                cwd=REPO,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, 60, f"sevflow /ready at {self.url} (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"sevflow exited early:\n{self.log_path.read_text()[-4000:]}")
        try:
            return local_get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def metric(self, name: str) -> float:
        """Sum of every sample of ``name`` on sevflow's /metrics (0 when absent)."""
        text = local_get(f"{self.url}/metrics").text
        return metric_sum(text, name)


def alertmanager_for(sevflow: Sevflow, workdir: Path) -> Alertmanager:
    """An Alertmanager (its files under ``workdir``) that notifies ``sevflow``'s webhook."""
    return Alertmanager(workdir, f"{sevflow.url}/webhooks/alertmanager", token=sevflow.token)


@pytest.fixture
def realtime_slack() -> Iterator[FakeSlack]:
    """The fake Slack without a rate limit: its limit runs on the unit tests' fake clock, which a
    sevflow child process cannot advance. Import it into a module as ``slack``."""
    fake = FakeSlack(SLACK_TOKEN).start()
    yield fake
    fake.close()


def sevflow_at_fakes(
    workdir: Path,
    kafka_bootstrap: str,
    pagerduty: FakePagerDuty,
    slack: FakeSlack,
    statuspage: FakeStatuspage,
    cert: tuple[Path, Path],
    **settings: str,
) -> Sevflow:
    """``sevflow run`` (not started) with its three sinks pointed at the vendor fakes, the way a
    user points them at a proxy; ``settings`` add or replace SEVFLOW_<NAME> values."""
    sevflow = Sevflow(workdir, kafka_bootstrap, f"sqlite:///{workdir / 'sevflow.db'}")
    sevflow.extra_env.update(
        SEVFLOW_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
        SEVFLOW_PAGERDUTY_BASE_URL=pagerduty.url,
        SEVFLOW_PAGERDUTY_CA_FILE=str(cert[0]),
        SEVFLOW_SLACK_TOKEN=SLACK_TOKEN,
        SEVFLOW_SLACK_BASE_URL=slack.url,
        SEVFLOW_ALLOW_INSECURE_VENDOR_URLS="1",  # the Slack and Statuspage fakes are plain http
        SEVFLOW_SLACK_CHANNEL_INTERVAL_SECONDS="0.2",
        SEVFLOW_STATUSPAGE_API_KEY=SP_KEY,
        SEVFLOW_STATUSPAGE_PAGE_ID=SP_PAGE,
        SEVFLOW_STATUSPAGE_BASE_URL=statuspage.url,
        SEVFLOW_STATUSPAGE_COMPONENTS="api=cmpapi000001",
    )
    sevflow.extra_env.update({f"SEVFLOW_{k.upper()}": v for k, v in settings.items()})
    return sevflow


@contextmanager
def running(sevflow: Sevflow, *alertmanagers: Alertmanager) -> Iterator[None]:
    """sevflow started first (its webhook must answer before an Alertmanager notifies), then each
    Alertmanager; all stopped however the block ends, Alertmanagers first, so that a failed test
    leaves no process behind and nothing notifies a stopped sevflow."""
    try:
        sevflow.start()
        for alertmanager in alertmanagers:
            alertmanager.start()
        yield
    finally:
        for alertmanager in alertmanagers:
            alertmanager.stop()
        sevflow.stop()
