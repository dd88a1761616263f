"""A real Prometheus (Debian's ``prometheus``) for the PromQL probe's tests: on a free loopback
port, scraping one target every second, its data in a temporary directory; stopped at the end."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from testkit.harness import wait_for
from testkit.local import free_port
from testkit.local_http import local_get

__all__ = ["PROMETHEUS", "prometheus_scraping"]

PROMETHEUS = os.environ.get(
    "SEVFLOW_PROMETHEUS_BIN", shutil.which("prometheus") or "/usr/bin/prometheus"
)


def _target_up(url: str) -> bool:
    try:
        answer = local_get(f"{url}/api/v1/query", params={"query": 'up{job="service"} == 1'}, timeout=2)
        return answer.status_code == 200 and bool(answer.json()["data"]["result"])
    except httpx.HTTPError:
        return False


@contextmanager
def prometheus_scraping(target: str, workdir: Path) -> Iterator[str]:
    """Prometheus scraping ``target`` (a base URL serving /metrics) as job ``service``, once the
    target is up; yields Prometheus' base URL."""
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: service\n    static_configs:\n"
        f"      - targets: ['{urlsplit(target).netloc}']\n"
    )
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _target_up(url), 60, f"Prometheus scraping {target} (log {log.name})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
