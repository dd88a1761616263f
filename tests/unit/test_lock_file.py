"""The hashed lock files name every dependency pyproject.toml declares, at a version it allows.

scripts/venv.sh and the Dockerfile install from the lock with ``--require-hashes`` and then install
sevflow with ``--no-deps``: a dependency added to pyproject.toml but not to the lock would be
missing at run time, not reported at install time. This test is what reminds us to run
scripts/lock.sh.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def _declared(extra: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = list(project["dependencies"])
    if extra:
        names += project["optional-dependencies"]["dev"]
    marker_env = {"sys_platform": "linux", "python_version": "3.11", "platform_system": "Linux"}
    reqs = [Requirement(spec) for spec in names]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(marker_env)]


@pytest.mark.parametrize(("lock", "extra"), [("lock.txt", True), ("runtime.txt", False)])
def test_every_declared_dependency_is_pinned_at_an_allowed_version(lock: str, extra: bool) -> None:
    pins = _pins(lock)
    problems = []
    for req in _declared(extra):
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in requirements/{lock}")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
    assert not problems, "; ".join(problems) + " (run scripts/lock.sh)"


def test_every_pin_carries_a_hash() -> None:
    text = (ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    unhashed = [b.split("==")[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
    assert not unhashed
