r"""Label matchers in Alertmanager's syntax: ``a="v"``, ``a!=v``, ``a=~"re"``, ``a!~re``.

As in Alertmanager (``pkg/labels``), regular expressions are anchored at both ends and a missing
label matches as the empty string. A value, quoted or not, is unescaped as Alertmanager does it:
``\"``, ``\\`` and ``\n`` are a double quote, a backslash and a line feed, and any other backslash
stays (``"host\.example"`` is the regex ``host\.example``, ``"\bdown\b"`` keeps its word
boundaries). sevflow also lets a matcher test an annotation by prefixing its name with
``annotations.`` (a label name cannot contain a dot, so nothing is ambiguous); a runbook's matcher
can test the incident's classification as ``classification.rule`` and the like
(:mod:`models.runbooks`), which severity rules refuse: they decide the classification.
"""

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Matcher", "MatcherError", "parse_matcher", "value_of"]

Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(
    r"""^\s*(?P<name>(?:(?:annotations|classification)\.)?[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$""",
    re.DOTALL,
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
        """The matcher as it is written: parsing this text gives the same matcher back."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


def _unquote(raw: str) -> str:
    """The value of a matcher, unescaped like Alertmanager's ``labels.ParseMatcher``."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    escaped = closed = False
    for index, char in enumerate(body):
        if escaped:
            escaped = False
            out.append(_ESCAPES.get(char, "\\" + char))  # another escape: a literal backslash
        elif char == "\\" and index < len(body) - 1:
            escaped = True
        elif char == '"':
            if not quoted or index < len(body) - 1:
                raise MatcherError(f'unescaped double quote in value {raw} (write \\")')
            closed = True
        else:
            out.append(char)
    if quoted and not closed:
        raise MatcherError(f"unbalanced quotes in value {raw}")
    return "".join(out)


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
