"""A probe-result record that does not decode is quarantined like a poison alert or command:
through a real worker on real Kafka, it lands on the probe-results quarantine topic with its
reason and bytes, is counted, and ``sevflow dlq list --quarantine`` lists it."""

import asyncio
import base64
import uuid
from pathlib import Path

from receiver.kafka import ensure_topic
from testkit.harness import role_env, wait_for
from testkit.kafka_io import read_json_topic
from tests.integration.test_poison_records import produce, pytestmark, sevflow_cli
from tests.integration.test_worker_failures import Worker

__all__ = ["pytestmark"]


def test_an_undecodable_probe_result_is_quarantined_and_listed(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    prefix = f"probeq-{uuid.uuid4().hex[:8]}"
    env = role_env(kafka_bootstrap, prefix, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    quarantine_topic = f"{prefix}-probe-results-quarantine"
    env |= {
        "SEVFLOW_ALERTS_QUARANTINE_TOPIC": f"{prefix}-alerts-quarantine",
        "SEVFLOW_COMMANDS_QUARANTINE_TOPIC": f"{prefix}-commands-quarantine",
        "SEVFLOW_PROBE_RESULTS_QUARANTINE_TOPIC": quarantine_topic,
    }
    topic = f"{prefix}-probe-results"
    asyncio.run(ensure_topic(kafka_bootstrap, topic, 8))
    asyncio.run(produce(kafka_bootstrap, topic, [(b"inc_x", b'{"incident_id": "inc_x"}')]))
    worker = Worker(tmp_path, env, "worker").start()
    try:
        found = wait_for(
            lambda: asyncio.run(read_json_topic(kafka_bootstrap, quarantine_topic, idle_polls=2)),
            90,
            "the probe result quarantined",
        )
        listing = sevflow_cli(env, "dlq", "list", "--quarantine")
    finally:
        worker.stop()
    [record] = found
    assert record["source"]["topic"] == topic  # type: ignore[index]
    assert record["error"] == "undecodable"
    assert str(record["reason"]).startswith("invalid probe result")
    assert base64.b64decode(str(record["value"])) == b'{"incident_id": "inc_x"}'
    assert listing.returncode == 0, listing.stderr
    assert sum(f"{topic}[" in line for line in listing.stdout.splitlines()) == 1
    log = worker.log.read_text()
    assert "quarantined poison record" in log
    assert "Traceback" not in log
