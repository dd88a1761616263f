"""The model-based test of the pipeline's promises (tests/model/machine.py) on PostgreSQL, whose
locking, isolation and column limits SQLite does not have. Fewer examples than the SQLite run:
each example starts from empty tables on the real server. CI runs the same (derandomized)
examples every time; SEVFLOW_MODEL_EXAMPLES_POSTGRES=N searches with fresh ones."""

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model import machine

pytestmark = pytest.mark.integration

SEARCH = os.environ.get("SEVFLOW_MODEL_EXAMPLES_POSTGRES")
EXAMPLES = int(SEARCH or "15")
STEPS = int(os.environ.get("SEVFLOW_MODEL_STEPS", "40"))


def test_pipeline_keeps_its_promises_on_postgresql(postgres_url: str) -> None:
    machine.database_urls[:] = [postgres_url]
    try:
        run_state_machine_as_test(
            machine.new_machine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=SEARCH is None,  # CI: the same examples every run
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        machine.database_urls.clear()
