"""Shared fixtures: where the real services are, and the test data the repository carries.

Integration and e2e tests need the Kafka broker and PostgreSQL that ``scripts/test`` starts. When
one is not running those tests fail with a message saying how to start it; they never skip.
"""

import importlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.kafka_io import topics_swept
from testkit.local import REPO

# Hypothesis' pytest plugin imports parts of hypothesis lazily, from its report hooks; imported
# that late (after a test's failure, or once aiokafka's clients were torn down) CPython 3.11.7's
# parser could fail the whole run with "SystemError: AST constructor recursion depth mismatch"
# while pytest rewrote them (an INTERNALERROR, no test results). Importing them while the session
# starts avoids that.
for _module in (
    "hypothesis.internal.conjecture.providers",
    "hypothesis.internal.escalation",
    "hypothesis.internal.healthcheck",
    "hypothesis.internal.observability",
    "hypothesis.reporting",
    "hypothesis.stateful",
    "hypothesis.statistics",
):
    importlib.import_module(_module)

pytest_plugins = ["testkit.store_backends"]

# Test data lives in the repository (tests/fixtures/SOURCES.md says where each file comes from), so
# a fresh clone runs its tests with nothing beside it.
FIXTURES = REPO / "tests" / "fixtures"
AM_FIXTURES = FIXTURES / "alertmanager"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def load_fixture(name: str) -> Any:
    """A JSON document from the Alertmanager fixtures (tests/fixtures/alertmanager)."""
    return json.loads((AM_FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The tests' real broker (scripts/test starts it on 127.0.0.1:19192, apart from the
    development broker on 19092).

    Every topic the run creates is deleted when it ends, so the broker does not accumulate
    thousands of them over many runs; SEVFLOW_TEST_KEEP_TOPICS=1 keeps them for a post-mortem.
    """
    bootstrap = os.environ.get("SEVFLOW_TEST_KAFKA", "127.0.0.1:19192")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not _port_open(host, int(port)):
        pytest.fail(
            f"no Kafka broker at {bootstrap}: scripts/test starts it, or run "
            "KAFKA_PORT=19192 KAFKA_CONTROLLER_PORT=19193 scripts/kafka.sh fresh"
        )
    if os.environ.get("SEVFLOW_TEST_KEEP_TOPICS") == "1":
        yield bootstrap
        return
    with topics_swept(bootstrap):
        yield bootstrap


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away database on the real PostgreSQL (scripts/postgres.sh start), one per run.

    Created from the ``sevflow_test`` database's server and dropped afterwards, so several test
    runs on one machine never share tables.
    """
    from sqlalchemy.engine import make_url

    from testkit.store_backends import throwaway_database

    base = make_url(
        os.environ.get(
            "SEVFLOW_TEST_DATABASE_URL",
            "postgresql://sevflow:sevflow@127.0.0.1:15432/sevflow_test",
        )
    )
    if not _port_open(base.host or "127.0.0.1", base.port or 5432):
        pytest.fail(f"no PostgreSQL at {base.host}:{base.port}: run scripts/postgres.sh start")
    with throwaway_database(base.render_as_string(hide_password=False)) as url:
        yield url


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[Any]:
    """A broker of the test's own (testkit/harness.py ``PrivateKafka``), for tests that stop and
    start Kafka; stopped at the end."""
    from testkit.harness import PrivateKafka  # (the harness imports this module)

    broker = PrivateKafka(tmp_path / "kafka-home").start()
    try:
        yield broker
    finally:
        broker.stop()
