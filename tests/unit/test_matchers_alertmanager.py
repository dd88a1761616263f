"""sevflow's label matchers decide as Alertmanager's do: the same regular expressions, the same
anchoring, the same refusals. Alertmanager itself is the reference here: each pattern is a route
of a routing tree that Debian's ``amtool config routes test`` walks for each value."""

import subprocess
from pathlib import Path

import pytest

from models.matchers import MatcherError, parse_matcher
from testkit.alertmanager import amtool

PATTERNS = [
    "critical|page",
    "(?i)CRIT.*",
    r".*\bdown\b.*",
    r"host\.example",
    "(a+)+$",
    "[[:alpha:]]+",
    r"\pL+",
    r"\d{2,3}",
    "",
    ".*",
    ".+",
    r"\Qa.b\E",
    "x*|y",
    "(?s)a.b",
    "(?U)a+",
    r"a\z",
    "[[:word:]]+",
    r"\x{263a}",
    r"\p{Greek}+",
    r"\\C",
    r"\Q\C\E",
]
VALUES = [
    "critical",
    "page",
    "pager",
    "CRITICAL-DB",
    "xcrit",
    "disk down now",
    "slowdown",
    "host.example",
    "hostXexample",
    "a" * 30 + "!",
    "aaa",
    "abc",
    "ab1",
    "héllo",
    "12",
    "1234",
    "a.b",
    "axb",
    "xxx",
    "y",
    "a_1",
    "\u263a",
    "αβγ",
    "\\C",
    "",
]


def _quoted(value: str) -> str:
    """A matcher's value as Alertmanager reads it (the escapes of ``Matcher.__str__``)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="module")
def routing_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One route per pattern (``x=~pattern`` → receiver ``rN``, all with ``continue``)."""
    routes = "".join(
        f"    - receiver: r{i}\n      continue: true\n"
        f"      matchers: ['x=~{_quoted(pattern).replace(chr(39), chr(39) * 2)}']\n"
        for i, pattern in enumerate(PATTERNS)
    )
    receivers = "".join(f"  - name: r{i}\n" for i in range(len(PATTERNS)))
    path = tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml"
    path.write_text(
        f"route:\n  receiver: none\n  routes:\n{routes}receivers:\n  - name: none\n{receivers}"
    )
    checked = subprocess.run(
        [amtool(), "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return path


@pytest.mark.parametrize("value", VALUES)
def test_a_value_matches_the_patterns_alertmanager_matches(routing_tree: Path, value: str) -> None:
    routed = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={routing_tree}", f"x={_quoted(value)}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert routed.returncode == 0, routed.stdout + routed.stderr
    by_alertmanager = set(routed.stdout.strip().split(",")) - {"none"}
    ours = {
        f"r{i}"
        for i, pattern in enumerate(PATTERNS)
        if parse_matcher(f"x=~{_quoted(pattern)}").matches({"x": value}, {})
    }
    assert ours == by_alertmanager


@pytest.mark.parametrize(
    "pattern", ["(?=a)b", "a(?!b)", "(?<=a)b", r"(a)\1", "(", "a{2,1}", "x**", r"\C", r"a\Cb"]
)
def test_what_alertmanager_refuses_is_refused(tmp_path: Path, pattern: str) -> None:
    config = tmp_path / "alertmanager.yml"
    matcher = f"x=~{_quoted(pattern)}".replace("'", "''")
    config.write_text(
        f"route:\n  receiver: none\n  routes:\n    - receiver: none\n      matchers: ['{matcher}']\n"
        "receivers:\n  - name: none\n"
    )
    checked = subprocess.run(
        [amtool(), "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode != 0, f"Alertmanager accepts {pattern!r}"
    with pytest.raises(MatcherError, match="bad regular expression"):
        parse_matcher(f"x=~{_quoted(pattern)}")
