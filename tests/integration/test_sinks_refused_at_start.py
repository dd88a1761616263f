"""``sevflow sinks`` with a CA file it cannot use (sinks/trust.py), on the real broker: the role
refuses to start with status 2 and one line naming the setting and the file. It stopped with
``sinks stopped: FileNotFoundError`` (status 1, neither named, so ``sevflow run`` started it
again and again), and left its dead-letter producer unclosed."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from testkit.local import REPO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("vendor", "setting"),
    [
        ({"SEVFLOW_PAGERDUTY_ROUTING_KEY": "R" * 32}, "SEVFLOW_PAGERDUTY_CA_FILE"),
        ({"SEVFLOW_SMTP_HOST": "127.0.0.1"}, "SEVFLOW_SMTP_CA_FILE"),
    ],
    ids=["pagerduty", "smtp"],
)
def test_a_missing_ca_file_is_refused_by_name(
    tmp_path: Path, kafka_bootstrap: str, vendor: dict[str, str], setting: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    missing = tmp_path / "no-such-ca.pem"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")},
        **vendor,
        setting: str(missing),
        "SEVFLOW_DATA_DIR": str(tmp_path / "data"),
        "SEVFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SEVFLOW_EVENTS_TOPIC": f"refused-events-{suffix}",
        "SEVFLOW_SINKS_DLQ_TOPIC": f"refused-dlq-{suffix}",
        "SEVFLOW_SINKS_GROUP_PREFIX": f"refused-{suffix}",
        "SEVFLOW_SINKS_METRICS_PORT": "0",
        "SEVFLOW_STATUS_PAGE_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sevflow", "sinks"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"sinks stopped: {setting}: {missing}: cannot be read (No such file or directory)" in output
    assert "Unclosed" not in output
    assert "Traceback" not in output
