"""Rules of the code's layout that an import graph cannot show, checked by reading the source.

- One clock: ``datetime.now`` is read in models/clock.py only, and only it defines ``Clock``.
"""

import ast
from collections.abc import Iterator

import pytest

from tests.conftest import REPO

#: Folders that are not the product: the tests, the benchmarks, the virtualenv.
_OUTSIDE = {"tests", "bench", ".venv", "docs", "examples", "deploy", "scripts"}


def _product_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(REPO.rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[0] in _OUTSIDE or relative.parts[0].startswith("."):
            continue
        yield relative.as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(relative))


def clock_reads_outside_models_clock(modules: Iterator[tuple[str, ast.Module]]) -> list[str]:
    """Where a module other than models/clock.py reads the wall clock or defines a ``Clock``."""
    found = []
    for name, tree in modules:
        if name == "models/clock.py":
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"now", "utcnow"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "datetime"
            ):
                found.append(f"{name}:{node.lineno} reads datetime.{node.func.attr}()")
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "Clock" for t in targets):
                    found.append(f"{name}:{node.lineno} defines Clock")
    return found


def test_one_clock() -> None:
    assert clock_reads_outside_models_clock(_product_modules()) == []


@pytest.mark.parametrize(
    "source",
    [
        "def _utc_now():\n    return datetime.now(UTC)",
        "Clock = Callable[[], datetime]",
        "now = lambda: datetime.utcnow()",
    ],
)
def test_the_clock_scan_sees(source: str) -> None:
    assert clock_reads_outside_models_clock(iter([("sevflow/x.py", ast.parse(source))])) != []
