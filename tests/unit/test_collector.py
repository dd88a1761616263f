"""A role's collector, settled once it is built (sevflow/roles/collector.py): what was alive is
frozen, never walked again, and the thresholds are the ones asked for. In a fresh interpreter,
since freezing is for the whole process."""

import json
import subprocess
import sys
from typing import Any

from sevflow.roles.collector import SETTLED_THRESHOLDS
from testkit.local import REPO

_RUN = """
import gc, json, sys
from sevflow.roles.collector import settle_collector
kept = [object() for _ in range(1000)]  # alive at start-up, as a role's app is
garbage = []
garbage.append(garbage)  # a cycle only the collector frees
del garbage
before = gc.get_freeze_count()
settle_collector(*[tuple(json.loads(sys.argv[1]))] if len(sys.argv) > 1 else [])
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "thresholds": gc.get_threshold(),
    "kept_tracked": gc.is_tracked(kept),
    "kept_in_a_generation": any(o is kept for o in gc.get_objects()),
}))
"""


def _settled(*argv: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, cwd=REPO, check=True
    )
    return dict(json.loads(result.stdout))


def test_what_is_alive_at_start_up_is_frozen_and_the_thresholds_are_the_settled_ones() -> None:
    settled = _settled()
    assert settled["before"] == 0
    # The interpreter's and the imports' objects and the list kept: thousands.
    assert settled["frozen"] > 5_000
    assert settled["thresholds"] == list(SETTLED_THRESHOLDS)
    # Frozen objects are tracked still, but in no generation the collector walks.
    assert settled["kept_tracked"] is True
    assert settled["kept_in_a_generation"] is False


def test_a_role_may_ask_for_its_own_thresholds() -> None:
    settled = _settled("[20000]")
    assert settled["thresholds"] == [20_000, 10, 10]
    assert settled["frozen"] > 5_000
