"""Rules of the code's layout that an import graph cannot show, checked by reading the source.

- SQL lives in store/: no module outside it builds a statement (sqlalchemy's top-level builders,
  ``sqlalchemy.sql``, its dialects) or names a table (store's schema modules).
- One clock: ``datetime.now`` is read in models/clock.py only, and only it defines ``Clock``.
- Sizes: no module over 400 lines and no function over 60 (nested ones and methods included) in
  the repository's own packages (everything but tests/, store/migrations/ and what is hidden or
  built), unless its docstring says why it must be one piece: the module's or the function's
  docstring contains ``one piece:`` followed by the reason, e.g. ``one piece: the dispatch table
  of every command must be read as a whole``. :data:`_BEING_SPLIT` names the offenders that were
  over the limit when the check was written; an entry that is no longer over it fails too.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

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


#: The limits of the house rules.
MODULE_LINES = 400
FUNCTION_LINES = 60
#: The marker a docstring carries when its module or function must stay one piece: the words and
#: a reason after them.
_ONE_PIECE = re.compile(r"one piece:\s*\S")
#: Where the size rules do not apply: the tests and the migrations (generated, then frozen).
_SIZE_EXEMPT = {("tests",), ("store", "migrations")}

#: Offenders tolerated while a split is under way on another branch (an entry within the limits
#: fails the test, so the set only shrinks). Empty: every module and function is within them.
_BEING_SPLIT: frozenset[str] = frozenset()


def _own_modules() -> Iterator[tuple[str, str]]:
    """(path, source) of every module of the repository's own packages."""
    for path in sorted(REPO.rglob("*.py")):
        parts = path.relative_to(REPO).parts
        if any(part.startswith(".") or part.endswith(".egg-info") for part in parts):
            continue
        if parts[0] in {"build", "dist"} or any(parts[: len(e)] == e for e in _SIZE_EXEMPT):
            continue
        yield Path(*parts).as_posix(), path.read_text(encoding="utf-8")


def _functions(
    node: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method under ``node``, nested ones too."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def _one_piece(node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return bool(_ONE_PIECE.search(ast.get_docstring(node) or ""))


def oversized(modules: Iterator[tuple[str, str]]) -> dict[str, str]:
    """What breaks the size rules: ``path`` (a module) or ``path:qualified.name`` (a function),
    each with its length; a module or function whose docstring says ``one piece:`` is left out."""
    found = {}
    for name, source in modules:
        tree = ast.parse(source, name)
        lines = len(source.splitlines())
        if lines > MODULE_LINES and not _one_piece(tree):
            found[name] = f"module of {lines} lines (limit {MODULE_LINES})"
        for qualified, node in _functions(tree):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > FUNCTION_LINES and not _one_piece(node):
                found[f"{name}:{qualified}"] = f"function of {length} lines (limit {FUNCTION_LINES})"
    return found


def test_no_module_or_function_over_the_size_limits() -> None:
    found = oversized(_own_modules())
    new = {name: size for name, size in found.items() if name not in _BEING_SPLIT}
    assert new == {}, "split these, or say in the docstring why each must be one piece:"
    assert sorted(_BEING_SPLIT - found.keys()) == [], "within the limits now: drop from _BEING_SPLIT"


def _long_function(name: str, docstring: str, lines: int = FUNCTION_LINES + 1) -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 2))
    return f'def {name}():\n    """{docstring}"""\n{body}'


def test_the_size_scan_sees() -> None:
    """The scan counts lines and functions as the rules mean them, and the marker needs a reason."""
    long_module = "x = 1\n" * (MODULE_LINES + 1)
    nested = "class C:\n    def outer(self):\n" + "".join(
        f"        {line}\n" for line in _long_function("inner", "why").splitlines()
    )
    sources = [
        ("a.py", _long_function("f", "Does much.")),
        ("b.py", _long_function("f", "one piece: the steps share one transaction.")),
        ("c.py", _long_function("f", "one piece:")),  # a marker without a reason
        ("d.py", _long_function("f", "Fits.", lines=FUNCTION_LINES)),
        ("e.py", long_module),
        ("f.py", f'"""Tables. one piece: every table of one schema."""\n{long_module}'),
        ("g.py", nested),
    ]
    assert set(oversized(iter(sources))) == {
        "a.py:f",
        "c.py:f",
        "e.py",
        "g.py:C.outer",
        "g.py:C.outer.inner",
    }
