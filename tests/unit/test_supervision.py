"""The restart rule of ``sevflow run`` and its status file (models/supervision.py)."""

import os
from pathlib import Path

import pytest

from models.supervision import RestartPolicy, RoleStatus, describe_exit, dumps, loads


def test_backoff_doubles_per_recent_exit_up_to_the_cap() -> None:
    policy = RestartPolicy(backoff=1, backoff_max=5, limit=10, window=100)
    assert policy.delay([50], now=50) == 1
    assert policy.delay([40, 50], now=50) == 2
    assert policy.delay([30, 40, 50], now=50) == 4
    assert policy.delay([10, 20, 30, 40, 50], now=50) == 5


def test_exits_older_than_the_window_no_longer_count() -> None:
    policy = RestartPolicy(backoff=1, backoff_max=60, limit=3, window=100)
    assert policy.delay([0, 10, 150], now=150) == 1
    assert not policy.crash_loops([0, 10, 150], now=150)
    assert policy.crash_loops([60, 100, 150], now=150)


def test_a_role_crash_loops_at_the_limit_within_the_window() -> None:
    policy = RestartPolicy(limit=5, window=300)
    assert not policy.crash_loops([1, 2, 3, 4], now=5)
    assert policy.crash_loops([1, 2, 3, 4, 5], now=5)
    assert not policy.crash_loops([1, 2, 3, 4, 5], now=301.5)


def test_exits_are_described_as_users_read_them() -> None:
    assert describe_exit(3) == "status 3"
    assert describe_exit(75) == "status 75"
    assert describe_exit(-9) == "killed by SIGKILL"


def test_the_status_file_round_trips_and_refuses_other_json() -> None:
    roles = [
        RoleStatus("worker", "up", 42, 1, "killed by SIGKILL", 1700000000.0),
        RoleStatus("sinks", "restarting", None, 0, "status 1", 1700000001.0),
    ]
    assert loads(dumps(7, roles)) == (7, roles)
    with pytest.raises(ValueError, match="not a sevflow status file"):
        loads('{"roles": []}')
    with pytest.raises(ValueError, match="not a sevflow status file"):
        loads("not json")


def test_settings_build_the_policy() -> None:
    from models.settings import Settings

    settings = Settings(restart_backoff_seconds=2, restart_limit=3, restart_window_seconds=60)
    assert settings.restart_policy() == RestartPolicy(2, 60, 3, 60)


def test_the_receiver_exports_the_roles_of_the_run_that_started_it(tmp_path: Path) -> None:
    from receiver.metrics import ReceiverMetrics

    roles_file = tmp_path / "roles.json"
    metrics = ReceiverMetrics(roles_file=roles_file)
    assert "sevflow_role_up" not in metrics.exposition().decode()  # no file yet
    roles = [
        RoleStatus("worker", "restarting", None, 2, "killed by SIGKILL", 1.0),
        RoleStatus("receiver", "up", os.getpid(), 0, None, 1.0),
    ]
    roles_file.write_text(dumps(os.getppid(), roles))  # this process's parent: its supervisor
    text = metrics.exposition().decode()
    assert 'sevflow_role_up{role="worker"} 0.0' in text
    assert 'sevflow_role_up{role="receiver"} 1.0' in text
    assert 'sevflow_role_restarts_total{role="worker"} 2.0' in text
    # A file another supervisor left (an earlier run) says nothing about this receiver's siblings.
    roles_file.write_text(dumps(os.getppid() + 1, roles))
    assert "sevflow_role_up" not in metrics.exposition().decode()
