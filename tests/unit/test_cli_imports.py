"""What ``sevflow incidents list|show`` import: only what they need (issue #17's CLI row).

Speed is shown by bench/ (bench/README.md, the CLI); these tests hold the import discipline that
gives it, in a fresh interpreter against a real SQLite store."""

import os
import subprocess
import sys
from pathlib import Path

from testkit.local import REPO
from tests.unit.test_analytics_scenario import Scenario, scenario_store

#: Run by a fresh interpreter: the command's status and output, then the modules it loaded.
_RUN = """
import contextlib, io, sys
from sevflow.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
print(status)
print(out.getvalue().count("inc_"))
print("\\n".join(sorted(sys.modules)))
"""

#: SQLAlchemy (its engine, compiler, ORM and asyncio extension), the async SQLite driver and
#: PostgreSQL's driver: importing them was most of the command's run.
HEAVY = ("sqlalchemy", "aiosqlite", "psycopg")


def _store(tmp_path: Path) -> tuple[str, Scenario]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return url, scenario_store(url)


def _loaded(url: str, *argv: str) -> tuple[str, int, list[str]]:
    env = {"PATH": os.environ.get("PATH", ""), "SEVFLOW_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-c", _RUN, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, ids, *modules = result.stdout.split()
    return status, int(ids), modules


def test_incidents_list_and_show_read_sqlite_without_sqlalchemy(tmp_path: Path) -> None:
    url, scenario = _store(tmp_path)
    status, ids, modules = _loaded(url, "incidents", "list")
    assert (status, ids) == ("0", 5)
    assert not [m for m in modules if m.split(".")[0] in HEAVY]
    incident_id = scenario.ids["QueueBacklog"]
    status, ids, modules = _loaded(url, "incidents", "show", incident_id)
    assert status == "0"
    assert ids >= 1
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


_SETTINGS = """
import sys
from models.settings import Settings
from models.settings.core import CoreSettings
print(CoreSettings.__pydantic_complete__, Settings.__pydantic_complete__)
Settings()
print(Settings.__pydantic_complete__)
print("\\n".join(sorted(sys.modules)))
"""


def test_settings_build_once_and_load_no_escalation_models() -> None:
    # Every settings mixin was built as a model of its own at import, then again inside Settings;
    # the escalation models were imported for the type of one method's answer.
    result = subprocess.run(
        [sys.executable, "-c", _SETTINGS],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    mixin_built, settings_built, built_when_used, *modules = result.stdout.split()
    assert (mixin_built, settings_built, built_when_used) == ("False", "False", "True")
    assert not [m for m in modules if m.startswith("models.escalation")]
