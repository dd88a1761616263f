"""Real processes for end-to-end tests: sevflow itself and Prometheus Alertmanager.

Both run as child processes on free loopback ports with their own configuration and data
directories, and are stopped (SIGTERM, then SIGKILL) when the test ends. Their output goes to
files so a failing test can show it.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from tests.conftest import REPO, free_port

ALERTMANAGER = os.environ.get("SEVFLOW_ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")
AMTOOL = os.environ.get("SEVFLOW_AMTOOL_BIN", shutil.which("amtool") or "/usr/bin/amtool")

T = TypeVar("T")


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
    port: int = field(default_factory=free_port)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sevflow.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
        env.update(
            SEVFLOW_KAFKA_BOOTSTRAP=self.kafka_bootstrap,
            SEVFLOW_ALERTS_TOPIC=f"e2e-alerts-{self.suffix}",
            SEVFLOW_APP_ID=f"e2e-{self.suffix}",
            SEVFLOW_DATABASE_URL=self.database_url,
            SEVFLOW_DATA_DIR=str(self.workdir / "data"),
            SEVFLOW_HTTP_PORT=str(self.port),
            SEVFLOW_WEBHOOK_TOKENS=self.token,
        )
        return env

    def start(self) -> "Sevflow":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sevflow", "run"],
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


@dataclass
class Alertmanager:
    """A real Prometheus Alertmanager whose only receiver is sevflow's webhook."""

    workdir: Path
    webhook_url: str
    token: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        return f"""\
route:
  receiver: sevflow
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sevflow
    webhook_configs:
      - url: {self.webhook_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {self.token}
"""

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

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
