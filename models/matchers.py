r"""Label matchers in Alertmanager's syntax: ``a="v"``, ``a!=v``, ``a=~"re"``, ``a!~re``.

As in Alertmanager (``pkg/labels``), regular expressions are anchored at both ends and a missing
label matches as the empty string. A value, quoted or not, is unescaped as Alertmanager does it:
``\"``, ``\\`` and ``\n`` are a double quote, a backslash and a line feed, and any other backslash
stays (``"host\.example"`` is the regex ``host\.example``, ``"\bdown\b"`` keeps its word
boundaries). sevflow also lets a matcher test an annotation by prefixing its name with
``annotations.`` (a label name cannot contain a dot, so nothing is ambiguous); a runbook's matcher
can test the incident's classification as ``classification.rule`` and the like
(:mod:`models.runbooks`), which severity rules refuse: they decide the classification.

Regular expressions are RE2's, as Alertmanager's are Go's (the same syntax, linear time): a
pattern Alertmanager refuses, with a back-reference or a look-around, is refused here too, and a
pattern such as ``(a+)+$`` costs time in proportion to the value it reads, where Python's
backtracking ``re`` would take seconds on a 30-character label and stop every alert behind it.
RE2's Python binding pays 1-4 µs a match for the match object and character offsets it builds,
where a matcher only asks yes or no: :meth:`Matcher.fullmatches` asks the compiled program itself
(0.5 µs), and each matcher remembers its answers for the values it sees most (a severity rule
reads the same few label values all day).

A lone surrogate (a string no UTF-8 text can hold, which Python's JSON and YAML readers let
through) is refused in a matcher, and read as U+FFFD in a label's value, as Go's JSON decoder reads it
for Alertmanager: the binding would raise ``UnicodeEncodeError`` on either, through every caller.
"""

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import re2
from re2 import _re2

from models.wire import lone_surrogate_at

__all__ = ["Matcher", "MatcherError", "parse_matcher", "value_of"]

Op = Literal["=", "!=", "=~", "!~"]

#: A matcher's name and operator; the value is the rest of the text without its trailing blanks
#: (a lazy ``(.*?)\s*$`` for it backtracked quadratically: 50,000 blanks inside a value took 7 s).
_HEAD = re.compile(
    r"\s*(?P<name>(?:(?:annotations|classification)\.)?[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"
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
    pattern: Any = field(default=None, compare=False, repr=False)
    """The compiled RE2 program (``re2._re2.RE2``) of ``=~`` and ``!~``, anchored at both ends by
    :meth:`fullmatches`."""
    _seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, labels: dict[str, str], annotations: dict[str, str]) -> bool:
        actual = value_of(self.name, labels, annotations)
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self.fullmatches(actual)
        return found if self.op == "=~" else not found

    def fullmatches(self, text: str) -> bool:
        """Whether the whole of ``text`` matches the regular expression (as Alertmanager anchors
        it); answers are remembered for up to :data:`_REMEMBERED` short values, then forgotten at
        once."""
        known = self._seen.get(text)
        if known is None:
            assert self.pattern is not None
            encoded = _utf8(text)
            found = self.pattern.Match(_ANCHOR_BOTH, encoded, 0, len(encoded))
            known = found[0][0] >= 0
            if len(text) <= _REMEMBERED_LENGTH:
                if len(self._seen) >= _REMEMBERED:
                    self._seen.clear()
                self._seen[text] = known
        return known

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


_REMEMBERED = 256
_REMEMBERED_LENGTH = 128
"""A matcher keeps the answers for up to 256 values of up to 128 characters: a label's usual
values, and at most ~60 KB per matcher whatever the alerts carry."""

_ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8, a lone surrogate read as U+FFFD (Go's reading of such JSON)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the MatcherError below, not a C++ log line
_RE2_OPTIONS.never_capture = True  # only whether it matches is asked


@lru_cache(maxsize=1024)
def parse_matcher(text: str) -> Matcher:
    """Parse one matcher, e.g. ``severity=~"critical|page"``; the same text gives the same matcher
    (a maintenance window's matchers are read again for every alert)."""
    if lone_surrogate_at(text):
        raise MatcherError(f"not valid UTF-8 (a lone surrogate): {text!r}")
    found = _HEAD.match(text)
    if not found:
        raise MatcherError(f"not a matcher (name op value, op one of = != =~ !~): {text!r}")
    name, op, value = found["name"], found["op"], _unquote(text[found.end() :].rstrip())
    pattern = None
    if op in {"=~", "!~"}:
        if _any_byte(value):
            # RE2's \C matches one byte (half a character); Go's regexp, Alertmanager's, refuses it.
            raise MatcherError(f"bad regular expression {value!r}: invalid escape sequence: \\C")
        try:
            pattern = re2.compile(value, _RE2_OPTIONS)._regexp
        except re2.error as exc:
            raise MatcherError(f"bad regular expression {value!r}: {_reason(exc)}") from None
    return Matcher(name, op, value, pattern)  # type: ignore[arg-type]


def _reason(exc: Exception) -> str:
    """RE2's complaint as text: the binding raises it as bytes (``b'missing ): (a'``)."""
    reason = exc.args[0] if exc.args else exc
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _any_byte(pattern: str) -> bool:
    """Whether ``pattern`` uses the escape ``\\C`` (not a literal backslash followed by C, nor
    text quoted between ``\\Q`` and ``\\E``)."""
    index, end = 0, len(pattern)
    while index < end - 1:
        if pattern[index] != "\\":
            index += 1
            continue
        following = pattern[index + 1]
        if following == "C":
            return True
        if following == "Q":  # literal text up to \E (or the end)
            closing = pattern.find("\\E", index + 2)
            index = end if closing < 0 else closing + 2
            continue
        index += 2
    return False
