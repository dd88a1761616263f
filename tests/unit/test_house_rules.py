"""Rules of the code's layout that an import graph cannot show, checked by reading the source.

- SQL lives in store/: no module outside it builds a statement (sqlalchemy's top-level builders,
  ``sqlalchemy.sql``, its dialects) or names a table (store's schema modules).
- One clock: ``datetime.now`` is read in models/clock.py only, and only it defines ``Clock``.
"""

import ast
from collections.abc import Iterator

import pytest

from testkit.local import REPO

#: Folders that are not the product: the tests, their shared doubles, the benchmarks, the virtualenv.
_OUTSIDE = {"tests", "testkit", "bench", ".venv", "docs", "examples", "deploy", "scripts"}

#: Where sqlalchemy may be imported from outside store/: its errors and the engine's type.
_ALLOWED_SQLALCHEMY = {"sqlalchemy.exc", "sqlalchemy.ext.asyncio"}
#: store's modules that define tables.
_TABLE_MODULES = {"store.schema", "store.sinks_schema", "store.escalation_schema", "store.tables"}
#: Calls that run or build SQL on a connection or a metadata.
_SQL_CALLS = {"execute", "exec_driver_sql", "create_all", "drop_all"}


def _product_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(REPO.rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[0] in _OUTSIDE or relative.parts[0].startswith("."):
            continue
        yield relative.as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(relative))


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) of every import, ``from a import b`` giving ``a`` and ``a.b``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def sql_outside_store(modules: Iterator[tuple[str, ast.Module]]) -> list[str]:
    """Where a module outside store/ imports statement builders or tables, or executes SQL."""
    found = []
    for name, tree in modules:
        if name.startswith("store/"):
            continue
        for line, module in _imported(tree):
            root = module.split(".")[0]
            if root == "sqlalchemy" and not any(
                module == allowed or module.startswith(f"{allowed}.") for allowed in _ALLOWED_SQLALCHEMY
            ):
                # ``from sqlalchemy.exc import X`` also yields ``sqlalchemy.exc``: allowed above;
                # ``from sqlalchemy import select`` yields ``sqlalchemy``: refused here.
                found.append(f"{name}:{line} imports {module}")
            elif any(module == t or module.startswith(f"{t}.") for t in _TABLE_MODULES):
                found.append(f"{name}:{line} imports {module}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _SQL_CALLS
            ):
                found.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
    return sorted(set(found))


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


def test_sql_only_in_store() -> None:
    assert sql_outside_store(_product_modules()) == []


def test_one_clock() -> None:
    assert clock_reads_outside_models_clock(_product_modules()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select",
        "import sqlalchemy",
        "from sqlalchemy.sql import text",
        "from store.schema import incidents",
        "from store import schema",
        "async def f(conn, q):\n    await conn.execute(q)",
        "def f(metadata, engine):\n    metadata.create_all(engine)",
    ],
)
def test_the_sql_scan_sees(source: str) -> None:
    """The scan is not blind: each way SQL could leave store/ is reported."""
    assert sql_outside_store(iter([("streams/x.py", ast.parse(source))])) != []
    assert sql_outside_store(iter([("store/x.py", ast.parse(source))])) == []


@pytest.mark.parametrize(
    "source",
    ["from sqlalchemy.exc import SQLAlchemyError", "from sqlalchemy.ext.asyncio import AsyncEngine"],
)
def test_the_sql_scan_allows_errors_and_the_engine_type(source: str) -> None:
    assert sql_outside_store(iter([("streams/x.py", ast.parse(source))])) == []


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
