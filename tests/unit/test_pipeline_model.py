"""The model-based test of the pipeline's promises (tests/model/machine.py), on SQLite; the
PostgreSQL run is in tests/integration/test_pipeline_model_postgres.py.

CI runs a fixed budget of examples; ``SEVFLOW_MODEL_EXAMPLES=20000`` searches for long. A failure
hypothesis finds is replayed from its example database until fixed, and becomes a named
regression test.
"""

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model import machine

EXAMPLES = int(os.environ.get("SEVFLOW_MODEL_EXAMPLES", "60"))
STEPS = int(os.environ.get("SEVFLOW_MODEL_STEPS", "40"))


def test_pipeline_keeps_its_promises() -> None:
    machine.database_urls.clear()
    run_state_machine_as_test(
        machine.PipelineModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
