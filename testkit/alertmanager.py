"""A real Prometheus Alertmanager as a child process, for end-to-end tests (testkit/harness.py)."""

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from testkit.local import free_port
from testkit.local_http import local_get, local_post
from testkit.processes import metric_sum, stop_process, wait_for

__all__ = ["ALERTMANAGER", "AMTOOL", "Alertmanager", "amtool"]

ALERTMANAGER = os.environ.get("SEVFLOW_ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")
AMTOOL = os.environ.get("SEVFLOW_AMTOOL_BIN", shutil.which("amtool") or "/usr/bin/amtool")


def amtool() -> str:
    """amtool's path, for the tests that run it without an Alertmanager (routing trees, configs);
    a missing one fails the test naming the package to install."""
    path = shutil.which(AMTOOL)
    if path is None:
        raise AssertionError("amtool not found: install Debian's prometheus-alertmanager")
    return path


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
            return local_get(f"{self.url}/-/ready", timeout=2).status_code == 200
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
        response = local_post(f"{self.url}/api/v2/alerts", json=alerts)
        if response.status_code != 200:
            raise AssertionError(f"Alertmanager refused alerts: {response.status_code} {response.text}")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of one of Alertmanager's own metrics."""
        return metric_sum(local_get(f"{self.url}/metrics", timeout=10).text, name, **labels)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
