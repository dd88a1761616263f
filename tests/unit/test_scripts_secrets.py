"""The scripts never print a secret: a database URL can carry a password, tokens are credentials.

``scripts/start`` once announced its store with ``${SEVFLOW_DATABASE_URL:-…}``, which expands to the
URL itself, password included, whenever the variable is set.
"""

import re
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
#: Settings whose value is a credential or may hold one.
SECRET = r"SEVFLOW_\w*(?:URL|TOKENS?|KEYS?|SECRETS?|PASSWORD|AUTH)\b"
#: An expansion that yields the variable's value: $VAR, ${VAR}, ${VAR:-…}, ${VAR-…}, ${VAR:=…}.
#: (${VAR:+text} yields only ``text``.)
VALUE = re.compile(r"\$(?:" + SECRET + r"|\{" + SECRET + r"(?:\}|:?[-=]))")
PRINTS = re.compile(r"^\s*(?:say|echo|printf|die|warn|log)\b")


def _printing_lines() -> list[tuple[str, int, str]]:
    lines = []
    for path in sorted(p for p in SCRIPTS.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        if not text.startswith("#!") and path.suffix != ".sh":
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if PRINTS.match(line):
                lines.append((path.name, number, line))
    return lines


def test_the_pattern_catches_the_old_start_message() -> None:
    old = 'say "store ${SEVFLOW_DATABASE_URL:+(SEVFLOW_DATABASE_URL)}${SEVFLOW_DATABASE_URL:-db}"'
    assert PRINTS.match(old)
    assert VALUE.search(old)
    assert not VALUE.search('say "store ${SEVFLOW_DATABASE_URL:+from SEVFLOW_DATABASE_URL}"')


def test_no_script_prints_a_secret_value() -> None:
    lines = _printing_lines()
    assert any("scripts/start" in line or "starting sevflow" in line for _, _, line in lines)
    offenders = [f"scripts/{s}:{n}: {line.strip()}" for s, n, line in lines if VALUE.search(line)]
    assert offenders == []
