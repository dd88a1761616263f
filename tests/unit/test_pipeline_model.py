"""The model-based test of the pipeline's promises (tests/model/machine.py), on SQLite; the
PostgreSQL run is in tests/integration/test_pipeline_model_postgres.py.

CI runs a fixed budget of examples, the same ones every run (derandomized: a landing never
depends on luck); ``SEVFLOW_MODEL_EXAMPLES=20000`` searches for long with fresh random examples. A
failure hypothesis finds is replayed from its example database until fixed, and becomes a named
regression test.
"""

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model import machine

SEARCH = os.environ.get("SEVFLOW_MODEL_EXAMPLES")
EXAMPLES = int(SEARCH or "100")
STEPS = int(os.environ.get("SEVFLOW_MODEL_STEPS", "40"))


def test_pipeline_keeps_its_promises() -> None:
    machine.database_urls.clear()
    run_state_machine_as_test(
        machine.new_machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=SEARCH is None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
