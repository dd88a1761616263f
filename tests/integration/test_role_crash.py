"""``sevflow run`` keeps serving when a role dies: the worker, then the sinks, are SIGKILLed (as the
kernel's OOM killer would) while an Alertmanager-like sender posts 600 alert groups.

The supervisor starts each killed role again after its backoff while the receiver keeps
accepting; the worker's uncommitted records are delivered again, the sinks' unconfirmed pages are
sent again with their dedup_key. Expected: sevflow still runs and answers /ready, the status file
counts one restart of each, and every accepted group is stored, published and paged once.
"""

import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.supervision import RoleStatus, loads
from sevflow.supervise import STATUS_FILE
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import metric_sum, wait_for
from testkit.store_backends import fresh_database
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert

GROUPS = 600


def test_sigkill_of_worker_then_sinks_keeps_serving_and_pages_once(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: Any,
) -> None:
    fresh_database(postgres_url, create=False)
    run = PagedRun(tmp_path, kafka_bootstrap, postgres_url, fake_pagerduty, tls_cert)
    sevflow = run.sevflow
    status_file = tmp_path / "data" / STATUS_FILE

    def role(name: str) -> RoleStatus:
        return next(r for r in loads(status_file.read_text())[1] if r.role == name)

    def kill_when(name: str, accepted: int) -> None:
        wait_for(lambda: len(sender.accepted) >= accepted, 120, f"{accepted} groups accepted")
        pid = role(name).pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: (r := role(name)).restarts == 1 and r.state == "up",
            60,
            f"the {name} started again (log {sevflow.log_path})",
        )
        assert role(name).last_exit == "killed by SIGKILL"

    sender = run.sender(interval=0.05, limit=GROUPS)
    try:
        sevflow.start()
        sender.start()
        kill_when("worker", GROUPS // 3)
        kill_when("sinks", 2 * GROUPS // 3)
        wait_for(lambda: len(sender.accepted) == GROUPS, 120, f"{GROUPS} groups accepted")
        accepted = run.accepted_by(sender)
        assert len(accepted) == GROUPS
        run.wait_until_settled(accepted)
        print(f"sent {len(accepted)}, answers {sender.statuses}")
        # A page whose confirmation died with the sinks is sent again with its dedup_key.
        run.check_once(accepted, triggers_resent=True)

        assert sevflow.process is not None
        assert sevflow.process.poll() is None
        assert httpx.get(f"{sevflow.url}/ready", timeout=5).status_code == 200
        roles = {r.role: r for r in loads(status_file.read_text())[1]}
        assert {name: (r.state, r.restarts) for name, r in roles.items()} == {
            "worker": ("up", 1),
            "receiver": ("up", 0),
            "sinks": ("up", 1),
        }
        metrics = httpx.get(f"{sevflow.url}/metrics", timeout=5).text
        assert metric_sum(metrics, "sevflow_role_up") == 3
        assert metric_sum(metrics, "sevflow_role_restarts_total", role="worker") == 1
        assert "worker exited (killed by SIGKILL); starting it again" in sevflow.log_path.read_text()
    finally:
        sender.stopping.set()
        run.close()
