"""Label matchers in Alertmanager's syntax: ``a="v"``, ``a!=v``, ``a=~"re"``, ``a!~re``.

As in Alertmanager (``pkg/labels``), regular expressions are anchored at both ends and a missing
label matches as the empty string. sevflow also lets a matcher test an annotation by prefixing its
name with ``annotations.`` (a label name cannot contain a dot, so nothing is ambiguous).
"""

import json
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Matcher", "MatcherError", "parse_matcher", "value_of"]

Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(
    r"""^\s*(?P<name>(?:annotations\.)?[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$"""
)


class MatcherError(ValueError):
    """A matcher that does not parse; the message says why."""


def value_of(name: str, labels: dict[str, str], annotations: dict[str, str]) -> str:
    """What a matcher on ``name`` compares: the label, or the annotation for ``annotations.x``;
    missing reads as the empty string."""
    if name.startswith("annotations."):
        return annotations.get(name[len("annotations.") :], "")
    return labels.get(name, "")


@dataclass(frozen=True)
class Matcher:
    """One matcher; :meth:`matches` tests labels and annotations."""

    name: str
    op: Op
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: dict[str, str], annotations: dict[str, str]) -> bool:
        actual = value_of(self.name, labels, annotations)
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise MatcherError(f"bad quoted value {raw}: {exc.msg}") from None
        if not isinstance(value, str):
            raise MatcherError(f"bad quoted value {raw}")
        return value
    if '"' in raw:
        raise MatcherError(f"unbalanced quotes in value {raw}")
    return raw


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher, e.g. ``severity=~"critical|page"``."""
    found = _MATCHER.match(text)
    if not found:
        raise MatcherError(f"not a matcher (name op value, op one of = != =~ !~): {text!r}")
    name, op, value = found["name"], found["op"], _unquote(found["value"])
    pattern = None
    if op in {"=~", "!~"}:
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise MatcherError(f"bad regular expression {value!r}: {exc}") from None
    return Matcher(name, op, value, pattern)  # type: ignore[arg-type]
