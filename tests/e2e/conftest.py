"""Fixtures of the end-to-end tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.harness import Sevflow


@pytest.fixture
def fresh_sevflow(tmp_path: Path, kafka_bootstrap: str, empty_store_url: str) -> Iterator[Sevflow]:
    """``sevflow run`` on a store with no tables yet (each back end), migrating it itself; no
    quiet-period resolution during the test."""
    running = Sevflow(tmp_path, kafka_bootstrap, empty_store_url)
    running.extra_env.update(SEVFLOW_QUIET_PERIOD_SECONDS="3600")
    try:
        yield running.start()
    finally:
        running.stop()
