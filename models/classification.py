"""Severity rules: ordered matchers, first match wins, each giving SEV1..SEV4.

A rules document (YAML) looks like::

    default: {severity: SEV3}
    security: ['security=~"true|yes"']      # any match marks a security incident
    data_breach: ['alertname=~"(?i).*exfiltration.*"']  # a data breach (and a security incident)
    data_loss: ['annotations.impact=~"(?i).*data loss.*"']  # SEV1
    rules:
      - name: service-down
        severity: SEV1
        description: Service completely down
        matchers: ['alertname=~"(?i).*down.*"', 'severity="critical"']

:func:`parse_rules` refuses a document that does not parse or names an unknown severity, with the
line and the reason, so a bad file fails at start-up instead of misclassifying at 3 a.m.
"""

from dataclasses import dataclass, field
from typing import Any

import yaml

from models.incident import Classification
from models.matchers import Matcher, MatcherError, parse_matcher, value_of
from models.severity import Severity

__all__ = ["Explanation", "Rule", "RuleSet", "RulesError", "parse_rules"]


class RulesError(ValueError):
    """A rules document that cannot be used; names the source, the line and the reason."""


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    matchers: tuple[Matcher, ...]
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class Explanation:
    """Why an alert got its severity: the rule that matched and every rule tried before it."""

    classification: Classification
    matched: Rule | None
    tried: list[tuple[str, str]] = field(default_factory=list)  # (rule, first failing matcher)


#: Distinct inputs remembered by :meth:`RuleSet.classify` before it starts afresh.
CACHE_SIZE = 4096


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default: Severity = Severity.SEV3
    security: tuple[Matcher, ...] = ()
    data_loss: tuple[Matcher, ...] = ()
    data_breach: tuple[Matcher, ...] = ()
    #: classify() results by the values of the labels and annotations the matchers read. Alerts
    #: differ mostly in labels no rule looks at (instance, pod…), so a storm is classified once.
    _cache: dict[tuple[str, ...], Classification] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _names: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", self.inputs)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The label names (and ``annotations.`` names) any matcher reads, in a fixed order."""
        matchers = [
            *self.security,
            *self.data_loss,
            *self.data_breach,
            *(m for r in self.rules for m in r.matchers),
        ]
        return tuple(sorted({m.name for m in matchers}))

    def explain(
        self, labels: dict[str, str], annotations: dict[str, str], *, trace: bool = True
    ) -> Explanation:
        """Classify, recording (when ``trace``) the first failing matcher of every rule tried.

        A data-breach match also marks a security incident (a breach is one)."""
        security = [str(m) for m in self.security if m.matches(labels, annotations)]
        data_loss = [str(m) for m in self.data_loss if m.matches(labels, annotations)]
        data_breach = [str(m) for m in self.data_breach if m.matches(labels, annotations)]
        extra = tuple(
            [f"security: {', '.join(security)}"] * bool(security)
            + [f"data breach: {', '.join(data_breach)}"] * bool(data_breach)
            + [f"data loss: {', '.join(data_loss)}"] * bool(data_loss)
        )

        def classification(severity: Severity, rule: str, reasons: tuple[str, ...]) -> Classification:
            return Classification(
                severity=severity,
                rule=rule,
                reasons=reasons,
                security=bool(security or data_breach),
                data_loss=bool(data_loss),
                data_breach=bool(data_breach),
            )

        tried: list[tuple[str, str]] = []
        for rule in self.rules:
            failing = next((m for m in rule.matchers if not m.matches(labels, annotations)), None)
            if failing is None:
                reasons = (f"matched {', '.join(map(str, rule.matchers))}", *extra)
                severity = rule.severity
                if data_loss:
                    severity = Severity.SEV1
                return Explanation(classification(severity, rule.name, reasons), rule, tried)
            if trace:
                tried.append((rule.name, str(failing)))
        severity = Severity.SEV1 if data_loss else self.default
        cls = classification(severity, "default", ("no rule matched", *extra))
        return Explanation(cls, None, tried)

    def classify(self, labels: dict[str, str], annotations: dict[str, str]) -> Classification:
        key = tuple(value_of(name, labels, annotations) for name in self._names)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            found = self._cache[key] = self.explain(labels, annotations, trace=False).classification
        return found


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping (as ``__line__``)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # YAML lets a later key silently replace an earlier one: a second ``severity`` would change a
    # rule, a second ``rules`` would drop every rule of the first. Refuse it with its line.
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            continue  # (an unhashable key: construct_mapping refuses it)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


class _Lines(list[Any]):
    """A YAML sequence that remembers the line of each of its items."""

    lines: tuple[int, ...] = ()


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Lines:
    sequence = _Lines(loader.construct_sequence(node, deep=True))
    sequence.lines = tuple(item.start_mark.line + 1 for item in node.value)
    return sequence


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

#: The top-level matcher lists, each marking the incident with the flag of its name.
_FLAGS = ("security", "data_loss", "data_breach")


def _severity(value: object, where: str) -> Severity:
    try:
        return Severity(str(value).upper())
    except ValueError:
        raise RulesError(f"{where}: unknown severity {value!r} (use SEV1, SEV2, SEV3 or SEV4)") from None


def _matchers(values: object, where: str) -> tuple[Matcher, ...]:
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RulesError(f"{where}: matchers must be a list of strings like 'severity=\"critical\"'")
    try:
        matchers = tuple(parse_matcher(v) for v in values)
    except MatcherError as exc:
        raise RulesError(f"{where}: {exc}") from None
    if any(m.name.startswith("classification.") for m in matchers):
        raise RulesError(f"{where}: a severity rule cannot test the classification it decides")
    return matchers


def _flag_matchers(values: object, flag: str, where: str, source: str) -> tuple[Matcher, ...]:
    """A top-level matcher list; a bad matcher is refused with its own line."""
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        lines = getattr(values, "lines", ())
        for index, value in enumerate(values):
            try:
                parse_matcher(value)
            except MatcherError as exc:
                at = f"{source} line {lines[index]}" if index < len(lines) else where
                raise RulesError(f"{at}: {flag}: {exc}") from None
    return _matchers(values, f"{where}: {flag}")


def _document(text: str, source: str) -> dict[str, Any]:
    """The rules document as a mapping with ``__line__`` marks; :class:`RulesError` otherwise."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError(f"{source}{line}: not valid YAML: {problem}") from None
    if not isinstance(document, dict):
        raise RulesError(f"{source}: expected a mapping with a 'rules' list")
    return document


def _rule(raw: object, index: int, top: str, source: str, names: set[str]) -> Rule:
    """Rule #``index`` of the document; its name joins ``names`` (they must be unique)."""
    if not isinstance(raw, dict):
        raise RulesError(f"{top}: rule #{index + 1} must be a mapping")
    where = f"{source} line {raw.get('__line__', '?')}"
    extra = set(raw) - {"__line__", "name", "severity", "matchers", "description"}
    if extra:
        raise RulesError(f"{where}: unknown keys {sorted(extra)} in rule #{index + 1}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise RulesError(f"{where}: rule #{index + 1} needs a name")
    if name in names:
        raise RulesError(f"{where}: duplicate rule name {name!r}")
    names.add(name)
    if "severity" not in raw:
        raise RulesError(f"{where}: rule {name!r} needs a severity")
    matchers = _matchers(raw.get("matchers"), where)
    if not matchers:
        raise RulesError(f"{where}: rule {name!r} needs at least one matcher")
    return Rule(
        name=name,
        severity=_severity(raw["severity"], where),
        matchers=matchers,
        description=str(raw.get("description", "")),
        line=int(raw.get("__line__", 0)),
    )


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse a rules document; raises :class:`RulesError` naming ``source``, the line and reason."""
    document = _document(text, source)
    top = f"{source} line {document.get('__line__', 1)}"
    # ``probes``: verification probes, read by models/probe_file.py with their lines.
    unknown = set(document) - {"__line__", "rules", "default", "probes", *_FLAGS}
    if unknown:
        raise RulesError(f"{top}: unknown keys {sorted(unknown)}")
    default = document.get("default") or {}
    if not isinstance(default, dict):
        raise RulesError(f"{top}: 'default' must be a mapping like {{severity: SEV3}}")
    default_severity = _severity(
        default.get("severity", "SEV3"), f"{source} line {default.get('__line__', 1)}"
    )
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RulesError(f"{top}: 'rules' must be a non-empty list")
    names: set[str] = set()
    rules = [_rule(raw, index, top, source, names) for index, raw in enumerate(raw_rules)]
    return RuleSet(
        rules=tuple(rules),
        default=default_severity,
        security=_flag_matchers(document.get("security"), "security", top, source),
        data_loss=_flag_matchers(document.get("data_loss"), "data_loss", top, source),
        data_breach=_flag_matchers(document.get("data_breach"), "data_breach", top, source),
    )
