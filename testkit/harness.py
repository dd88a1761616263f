"""Real processes for end-to-end tests: sevflow itself and Prometheus Alertmanager.

Both run as child processes on free loopback ports with their own configuration and data
directories, and are stopped (SIGTERM, then SIGKILL) when the test ends. Their output goes to
files so a failing test can show it. ``sevflow_at_fakes`` and ``running`` assemble the stack the
end-to-end tests share: sevflow pointed at the vendor fakes, fed by Alertmanager.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from testkit.fakes.fixtures import ROUTING_KEY, SLACK_TOKEN, SP_KEY, SP_PAGE
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.local import REPO, free_port

ALERTMANAGER = os.environ.get("SEVFLOW_ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")
AMTOOL = os.environ.get("SEVFLOW_AMTOOL_BIN", shutil.which("amtool") or "/usr/bin/amtool")

T = TypeVar("T")


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


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns a truthy value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
            return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def metric(self, name: str) -> float:
        """Sum of every sample of ``name`` on sevflow's /metrics (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return metric_sum(text, name)


def metric_sum(exposition: str, name: str, **labels: str) -> float:
    """Sum the samples of ``name`` (optionally only those with ``labels``) in a text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series != name and not series.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


@dataclass
class Alertmanager:
    """A real Prometheus Alertmanager whose only receiver is sevflow's webhook."""

    workdir: Path
    webhook_url: str
    token: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: ``webhook_config.max_alerts`` (0: unlimited).
    max_alerts: int = 0
    group_interval: str = "1s"
    group_wait: str = "1s"
    #: Send ``basic_auth`` with this (user, password) instead of the bearer token.
    basic_auth: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        if self.basic_auth is None:
            auth = f"""\
          authorization:
            type: Bearer
            credentials: {self.token}
"""
        else:
            auth = f"""\
          basic_auth:
            username: {self.basic_auth[0]}
            password: {self.basic_auth[1]}
"""
        limit = f"        max_alerts: {self.max_alerts}\n" if self.max_alerts else ""
        return f"""\
route:
  receiver: sevflow
  group_by: ['alertname']
  group_wait: {self.group_wait}
  group_interval: {self.group_interval}
  repeat_interval: 1h
receivers:
  - name: sevflow
    webhook_configs:
      - url: {self.webhook_url}
        send_resolved: true
{limit}        http_config:
{auth}"""

    def start(self) -> "Alertmanager":
        if not os.access(ALERTMANAGER, os.X_OK):
            raise AssertionError(
                f"{ALERTMANAGER} not found: install prometheus-alertmanager (scripts/install-deps.sh)"
            )
        (self.workdir / "am-data").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(self.config())
        with (self.workdir / "alertmanager.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={config}",
                    f"--storage.path={self.workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, 30, f"Alertmanager at {self.url}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.workdir / "alertmanager.log").read_text()
            raise AssertionError(f"Alertmanager exited early:\n{log[-4000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def amtool(self, *args: str) -> str:
        """Run ``amtool`` against this Alertmanager; fails the test on a non-zero exit."""
        result = subprocess.run(
            [AMTOOL, f"--alertmanager.url={self.url}", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"amtool {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def log(self) -> str:
        return (self.workdir / "alertmanager.log").read_text()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Push alerts through Alertmanager's own API (``POST /api/v2/alerts``)."""
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=30)
        if response.status_code != 200:
            raise AssertionError(f"Alertmanager refused alerts: {response.status_code} {response.text}")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of one of Alertmanager's own metrics."""
        return metric_sum(httpx.get(f"{self.url}/metrics", timeout=10).text, name, **labels)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


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


@dataclass
class PrivateKafka:
    """A broker of a test's own (scripts/kafka.sh on other ports, data under ``home``).

    For tests that stop and start Kafka: the broker the other tests share is never touched.
    """

    home: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    heap: str = "384m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, action: str) -> None:
        env = dict(
            os.environ,
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_HEAP=self.heap,
            SEVFLOW_HOME=str(self.home),
        )
        result = subprocess.run(
            [str(REPO / "scripts" / "kafka.sh"), action],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"scripts/kafka.sh {action} failed:\n{result.stderr[-4000:]}")

    def start(self) -> "PrivateKafka":
        self._script("start")
        return self

    def stop(self) -> None:
        self._script("stop")


def read_topic(
    bootstrap: str, topic: str, *, expect: int = 1, settle: float = 2.0, timeout: float = 60
) -> list[Any]:
    """Every record of ``topic``, read until there are at least ``expect`` and nothing new has
    arrived for ``settle`` seconds (so extra, duplicate records would be seen), or ``timeout``."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            request_timeout_ms=10_000,
        )
        await asyncio.wait_for(consumer.start(), 20)
        seen: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                got = [m for messages in batch.values() for m in messages]
                if got:
                    seen.extend(got)
                    quiet_since = time.monotonic()
                elif len(seen) >= expect and time.monotonic() - quiet_since >= settle:
                    break
        finally:
            await consumer.stop()
        return seen

    return asyncio.run(read())
