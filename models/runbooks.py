r"""Runbooks by incident type: Markdown files with a small YAML front matter.

A runbook file looks like::

    ---
    title: Service Unavailable (5xx errors)
    order: 30                      # optional: lower is tried first (default 50), then the name
    matchers:
      - 'alertname=~"(?i).*(5xx|error.?rate).*"'
    ---
    **Investigation:**
    kubectl get pods -n <namespace>

The matchers use Alertmanager's syntax (:mod:`models.matchers`) over the labels of the alert that
opened the incident, its annotations (``annotations.x``) and its classification
(``classification.rule``, ``classification.severity``, ``classification.security``,
``classification.data_breach``, ``classification.data_loss``; flags read ``true`` or ``false``).
All of a runbook's matchers must match; the first runbook that matches (by ``order``, then name)
is the incident's.

:func:`render` fills the body's placeholders (``<namespace>``, ``<deployment>``, ``<pod>``, …) from
the labels and leaves a placeholder visible when no label gives it a safe value: a value is pasted
into shell commands by a responder, so only plain names (letters, digits, ``. _ : / @ -``) fill one.

:func:`parse_runbook` refuses a file that does not parse with the file and the line, so a bad file
fails at start-up, never at 3 a.m.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import yaml

from models.alert import AlertRecord
from models.events import RunbookSnapshot
from models.incident import Classification
from models.matchers import Matcher, MatcherError, parse_matcher

__all__ = [
    "PLACEHOLDER_LABELS",
    "RUNBOOK_TEXT_MAX",
    "Runbook",
    "RunbookError",
    "RunbookSet",
    "TeamRunbooks",
    "classification_values",
    "parse_runbook",
    "render",
]

#: The longest runbook body accepted (characters): a runbook is read during an incident, and this
#: keeps every event carrying it far below Kafka's and PagerDuty's record limits (sinks/limits.py).
RUNBOOK_TEXT_MAX = 20_000

#: The labels that fill a placeholder, first present wins; any other ``<name>`` reads label ``name``.
PLACEHOLDER_LABELS: Mapping[str, tuple[str, ...]] = {
    "namespace": ("namespace", "kubernetes_namespace", "k8s_namespace"),
    "deployment": ("deployment", "service", "app", "job"),
    "service": ("service", "app", "job", "deployment"),
    "app": ("app", "app_kubernetes_io_name", "service", "deployment"),
    "pod": ("pod", "pod_name", "kubernetes_pod_name"),
    "instance": ("instance",),
    "node": ("node", "kubernetes_node"),
}

_PLACEHOLDER = re.compile(r"<([a-z][a-z0-9_-]*)>")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*")
_CLASSIFICATION_NAMES = ("rule", "severity", "security", "data_breach", "data_loss")
_FRONT_MATTER_KEYS = {"title", "matchers", "order"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class RunbookError(ValueError):
    """A runbook file that cannot be used; names the file, the line and the reason."""


@dataclass(frozen=True)
class Runbook:
    """One runbook as written (its placeholders unfilled)."""

    name: str
    title: str
    matchers: tuple[Matcher, ...]
    body: str
    order: int = 50
    source: str = ""

    def matches(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], cls: Classification
    ) -> bool:
        values = {**labels, **classification_values(cls)}
        return all(m.matches(values, dict(annotations)) for m in self.matchers)


def classification_values(cls: Classification) -> dict[str, str]:
    """What ``classification.x`` matchers read (label names cannot contain a dot: no clash)."""
    return {
        "classification.rule": cls.rule,
        "classification.severity": cls.severity.value,
        "classification.security": str(cls.security).lower(),
        "classification.data_breach": str(cls.data_breach).lower(),
        "classification.data_loss": str(cls.data_loss).lower(),
    }


def _fill(name: str, labels: Mapping[str, str]) -> str | None:
    for label in PLACEHOLDER_LABELS.get(name, (name,)):
        value = labels.get(label, "")
        if value and _SAFE_VALUE.fullmatch(value):
            return value
    return None


def render(
    runbook: Runbook,
    labels: Mapping[str, str],
    url: str | None = None,
    link_template: str | None = None,
) -> RunbookSnapshot:
    """The runbook for an incident: placeholders filled from ``labels`` where a label gives a
    safe value, left visible (``<namespace>``) where not; ``url`` is the alert's own
    ``runbook_url``, linked beside it; ``link_template`` where the runbooks are published
    (``{name}`` replaced by the runbook's name)."""

    def replace(found: re.Match[str]) -> str:
        value = _fill(found[1], labels)
        return value if value is not None else found[0]

    text = _PLACEHOLDER.sub(replace, runbook.body)
    missing = sorted({m[1] for m in _PLACEHOLDER.finditer(text)})
    link = link_template.replace("{name}", runbook.name) if link_template else None
    return RunbookSnapshot(
        name=runbook.name, title=runbook.title, text=text, url=url, placeholders=missing, link=link
    )


@dataclass(frozen=True)
class RunbookSet:
    """The runbooks in the order they are tried."""

    runbooks: tuple[Runbook, ...] = ()
    #: Where the runbooks are published for a browser, ``{name}`` standing for a runbook's name.
    link_template: str | None = None

    @classmethod
    def of(cls, runbooks: Iterable[Runbook], link_template: str | None = None) -> "RunbookSet":
        """Later runbooks of the same name replace earlier ones (a user's override)."""
        by_name = {r.name: r for r in runbooks}
        ordered = tuple(sorted(by_name.values(), key=lambda r: (r.order, r.name)))
        return cls(ordered, link_template)

    def get(self, name: str) -> Runbook | None:
        return next((r for r in self.runbooks if r.name == name), None)

    def match(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], cls: Classification
    ) -> Runbook | None:
        """The first runbook whose matchers all match, or None."""
        return next((r for r in self.runbooks if r.matches(labels, annotations, cls)), None)

    def for_alert(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], cls: Classification
    ) -> RunbookSnapshot | None:
        """The matched runbook rendered for the alert, with its ``runbook_url`` annotation."""
        found = self.match(labels, annotations, cls)
        if found is None:
            return None
        url = annotations.get("runbook_url") or annotations.get("runbook") or None
        return render(found, labels, url, self.link_template)

    def for_record(self, record: AlertRecord, cls: Classification) -> RunbookSnapshot | None:
        """:meth:`for_alert` of an alert record (a :data:`models.incident.RunbookChooser`)."""
        return self.for_alert(record.labels, record.annotations, cls)


@dataclass(frozen=True)
class TeamRunbooks:
    """The runbooks of a teams file (README "Teams"): the runbooks of the team an alert record
    belongs to tried first, then the shared ones. ``team_of`` is the same rule that records the
    incident's team (:meth:`models.teams.Teams.team_of`), so both agree on every replay."""

    shared: RunbookSet
    by_team: Mapping[str, RunbookSet]
    team_of: Callable[[AlertRecord], str]

    def for_record(self, record: AlertRecord, cls: Classification) -> RunbookSnapshot | None:
        """The team's matching runbook, else the shared one (a ``RunbookChooser``)."""
        own = self.by_team.get(self.team_of(record))
        found = own.for_record(record, cls) if own is not None else None
        return found if found is not None else self.shared.for_record(record, cls)


def _split(text: str, source: str) -> tuple[str, str, int]:
    """(front matter, body, line of the body's first line)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise RunbookError(f"{source} line 1: a runbook starts with a '---' front matter line")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise RunbookError(f"{source} line 1: the front matter is not closed by a '---' line")


def _matcher(text: str, line: int, source: str) -> Matcher:
    try:
        matcher = parse_matcher(text)
    except MatcherError as exc:
        raise RunbookError(f"{source} line {line}: {exc}") from None
    name = matcher.name.removeprefix("classification.")
    if name != matcher.name and name not in _CLASSIFICATION_NAMES:
        known = ", ".join(f"classification.{n}" for n in _CLASSIFICATION_NAMES)
        raise RunbookError(f"{source} line {line}: unknown name {matcher.name} (use {known})")
    return matcher


def parse_runbook(name: str, text: str, source: str | None = None) -> Runbook:
    """Parse one runbook file named ``name`` (its file name without ``.md``); raises
    :class:`RunbookError` naming ``source``, the line and the reason."""
    where = source or f"{name}.md"
    if not _NAME.fullmatch(name):
        raise RunbookError(f"{where}: a runbook's file name is letters, digits, '.', '_' and '-'")
    front, body, body_line = _split(text, where)
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise RunbookError(f"{where} line {line}: front matter is not valid YAML: {exc}") from None
    if not isinstance(node, yaml.MappingNode):
        raise RunbookError(f"{where} line 2: the front matter must be a mapping (title, matchers)")
    fields: dict[str, yaml.Node] = {}
    for key, value in node.value:
        line = key.start_mark.line + 2
        if not isinstance(key, yaml.ScalarNode) or key.value not in _FRONT_MATTER_KEYS:
            raise RunbookError(f"{where} line {line}: unknown key (use {sorted(_FRONT_MATTER_KEYS)})")
        if key.value in fields:
            raise RunbookError(f"{where} line {line}: duplicate key {key.value!r}")
        fields[key.value] = value
    title = fields.get("title")
    if not isinstance(title, yaml.ScalarNode) or not title.value.strip():
        raise RunbookError(f"{where} line 2: the front matter needs a title")
    raw = fields.get("matchers")
    if not isinstance(raw, yaml.SequenceNode) or not raw.value:
        line = raw.start_mark.line + 2 if raw is not None else 2
        raise RunbookError(f"{where} line {line}: 'matchers' must be a non-empty list of strings")
    matchers = []
    for item in raw.value:
        if not isinstance(item, yaml.ScalarNode):
            raise RunbookError(f"{where} line {item.start_mark.line + 2}: a matcher is a string")
        matchers.append(_matcher(item.value, item.start_mark.line + 2, where))
    order = 50
    if (raw_order := fields.get("order")) is not None:
        digits = raw_order.value.lstrip("-") if isinstance(raw_order, yaml.ScalarNode) else ""
        # (At most 9 ASCII digits: int() refuses over 4,300, with words of its own.)
        if not (len(digits) <= 9 and digits.isascii() and digits.isdigit()):
            raise RunbookError(f"{where} line {raw_order.start_mark.line + 2}: order is a number")
        order = int(raw_order.value)
    if not body.strip():
        raise RunbookError(f"{where} line {body_line}: the runbook has no body")
    if len(body) > RUNBOOK_TEXT_MAX:
        raise RunbookError(
            f"{where} line {body_line}: the body is {len(body)} characters, over "
            f"{RUNBOOK_TEXT_MAX} (link a longer document with an alert's runbook_url)"
        )
    return Runbook(
        name=name,
        title=title.value.strip(),
        matchers=tuple(matchers),
        body=body.strip("\n") + "\n",
        order=order,
        source=where,
    )
