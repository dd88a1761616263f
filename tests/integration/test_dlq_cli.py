"""``sevflow dlq`` through its real entry point."""

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def sevflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *args],
        cwd=REPO,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_empty_dead_letter_topic_is_said_plainly(kafka_bootstrap: str) -> None:
    result = sevflow(
        "dlq",
        "list",
        SEVFLOW_KAFKA_BOOTSTRAP=kafka_bootstrap,
        SEVFLOW_SINKS_DLQ_TOPIC=f"dlq-{uuid.uuid4().hex[:8]}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no dead letters"


def test_unreachable_kafka_is_a_clear_error() -> None:
    result = sevflow("dlq", "list", SEVFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "not reachable" in result.stderr
    assert "Traceback" not in result.stderr
