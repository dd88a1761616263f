r"""Teams: which team owns an incident, and where that team is paged, told and shown.

A teams file (YAML, ``SEVFLOW_TEAMS_FILE``) lists the teams in order; the first team whose
matchers all match the alert that opens an incident owns it::

    teams:
      - name: payments
        matchers: ['team="payments"']
        routing_key: {env: PAYMENTS_PD_KEY}     # or {file: /run/secrets/payments-pd}
        announce_channel: payments-incidents
        status_page_components: {checkout: Checkout}
      - name: storage
        matchers: ['receiver="storage-pager"']  # the Alertmanager receiver, not a label

Matchers use the severity rules' syntax (:mod:`models.matchers`) over labels and
``annotations.<name>``; the name ``receiver`` tests the Alertmanager receiver the alert was sent
to. An alert no team matches belongs to the implicit team ``default``, which is today's single
team: ``SEVFLOW_PAGERDUTY_ROUTING_KEY``, ``SEVFLOW_SLACK_ANNOUNCE_CHANNEL`` and
``SEVFLOW_STATUSPAGE_COMPONENTS``; without a teams file every incident is the default team's. A
team that leaves out its routing key, channel or components uses the default team's.

A routing key is never written in the file: it names an environment variable or a file, read
once at start (:func:`resolve_routing_keys`); a reference that does not resolve stops sevflow at
start, naming the variable or the file and never a value. A team's escalation policy and
business hours are applied by ``streams.escalation.team_policies``, its private-channel invites by
the Slack sink, its runbooks directory by ``streams.runbooks.team_runbooks`` (tried before the
shared runbooks).

Errors (:class:`TeamsError`) name the file and the line: ``teams.yaml:12: unknown field
'pagerduty_key'``.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from models.alert import AlertRecord
from models.escalation import BusinessCalendar, EscalationOverride
from models.matchers import Matcher, MatcherError, parse_matcher
from models.text_files import TextFileError, read_text
from models.yaml_lines import line_of

__all__ = [
    "DEFAULT_TEAM",
    "RECEIVER_MATCHER",
    "TEAM_NAME_MAX",
    "SecretRef",
    "Team",
    "TeamChoice",
    "TeamEscalation",
    "Teams",
    "TeamsError",
    "default_team",
    "parse_teams",
    "resolve_routing_keys",
]

#: The team of an incident no team of the teams file matches (and of every incident without one).
DEFAULT_TEAM = "default"
#: The matcher name that tests the Alertmanager receiver instead of a label.
RECEIVER_MATCHER = "receiver"
#: The longest team name (``incidents.team``).
TEAM_NAME_MAX = 64

_TEAM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class TeamsError(ValueError):
    """A teams file that cannot be used; the message names the file, the line and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class SecretRef(_Strict):
    """Where a secret is read at start: an environment variable or a file (never the value)."""

    env: str | None = Field(default=None, min_length=1, description="An environment variable.")
    file: Path | None = Field(default=None, description="A file holding the secret (trimmed).")

    @model_validator(mode="after")
    def _one_source(self) -> "SecretRef":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: NAME or file: PATH (never the key itself)")
        return self

    def __str__(self) -> str:
        return f"env {self.env}" if self.env is not None else f"file {self.file}"


def _matcher(text: str) -> str:
    try:
        parse_matcher(text)
    except MatcherError as exc:
        raise ValueError(f"bad matcher: {exc}") from None
    return text


class TeamEscalation(_Strict):
    """A team's escalation: its own policy file, or overrides of the default policy's path; and
    the PagerDuty services of its levels' targets, by reference."""

    policy_file: Path | None = None
    overrides: tuple[EscalationOverride, ...] = ()
    routing_keys: dict[str, SecretRef] = Field(
        default_factory=dict,
        description="PagerDuty target name (a level's `to`) → its service's routing key, by "
        "reference; before SEVFLOW_ESCALATION_PAGERDUTY_ROUTING_KEYS for this team's incidents.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> "TeamEscalation":
        if self.policy_file is not None and self.overrides:
            raise ValueError("give a policy_file or overrides, not both")
        return self


class Team(_Strict):
    """One team as the teams file describes it; None fields use the default team's."""

    name: str = Field(min_length=1, max_length=TEAM_NAME_MAX)
    matchers: tuple[Annotated[str, AfterValidator(_matcher)], ...] = Field(
        default=(), description="All must match (labels, annotations.<name>, receiver)."
    )
    routing_key: SecretRef | None = Field(
        default=None, description="The team's PagerDuty Events API v2 routing key, by reference."
    )
    announce_channel: str | None = Field(default=None, min_length=1, max_length=80)
    private_channel_invite: tuple[str, ...] = Field(
        default=(),
        description="Slack users or user groups invited to the team's private (security) channels.",
    )
    escalation: TeamEscalation | None = None
    status_page_components: dict[str, str] | None = Field(
        default=None, description="Service label value → component (the public allow-list)."
    )
    business_hours: BusinessCalendar | None = Field(
        default=None, description="Business days, hours and time zone (SEV3/SEV4)."
    )
    runbooks_dir: Path | None = None

    @model_validator(mode="after")
    def _named(self) -> "Team":
        if not _TEAM_NAME.fullmatch(self.name):
            raise ValueError(f"team name {self.name!r}: use lower-case letters, digits, - and _")
        return self

    def parsed_matchers(self) -> tuple[Matcher, ...]:
        return tuple(parse_matcher(m) for m in self.matchers)

    @property
    def uses_receiver(self) -> bool:
        """True when a matcher of this team tests the Alertmanager receiver."""
        return any(m.name == RECEIVER_MATCHER for m in self.parsed_matchers())


class _File(_Strict):
    teams: tuple[Team, ...] = ()


def _inputs(labels: Mapping[str, str], receiver: str | None) -> dict[str, str]:
    values = dict(labels)
    values[RECEIVER_MATCHER] = receiver or ""
    return values


@dataclass(frozen=True)
class TeamChoice:
    """Which team owns an alert, and why: every team tried before it with its first failing
    matcher (``sevflow teams match``)."""

    team: Team
    matched: str | None  # the first matcher of the chosen team, None for the default team
    tried: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Teams:
    """The teams in order, the default team, and the routing keys resolved at start."""

    teams: tuple[Team, ...]
    default: Team
    routing_keys: Mapping[str, SecretStr] = field(default_factory=dict)
    source: str = ""
    #: The line of each team in the file, for errors found after parsing.
    lines: Mapping[str, int] = field(default_factory=dict)
    #: Team → PagerDuty target → the routing key of its escalation service (resolved at start).
    escalation_keys: Mapping[str, Mapping[str, SecretStr]] = field(default_factory=dict)
    _matchers: dict[str, tuple[Matcher, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = {team.name: team.parsed_matchers() for team in self.teams}
        object.__setattr__(self, "_matchers", parsed)

    def all(self) -> tuple[Team, ...]:
        """Every team, the default last (the order they are tried in)."""
        return (*self.teams, self.default)

    def get(self, name: str) -> Team:
        """The team called ``name``; an incident of a team no longer in the file is the
        default team's (its recorded name still shows where it came from)."""
        return next((t for t in self.teams if t.name == name), self.default)

    def explain(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], receiver: str | None
    ) -> TeamChoice:
        values, notes = _inputs(labels, receiver), dict(annotations)
        tried: list[tuple[str, str]] = []
        matchers = self._matchers
        for team in self.teams:
            failing = next((m for m in matchers[team.name] if not m.matches(values, notes)), None)
            if failing is None:
                first = matchers[team.name][0] if matchers[team.name] else None
                return TeamChoice(team, str(first) if first else "(no matchers)", tried)
            tried.append((team.name, str(failing)))
        return TeamChoice(self.default, None, tried)

    def choose(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], receiver: str | None
    ) -> Team:
        """The first team whose matchers all match; else the default team."""
        return self.explain(labels, annotations, receiver).team

    def team_of(self, record: AlertRecord) -> str:
        """The team of the incident ``record`` opens: labels and annotations, and the
        Alertmanager receiver it was sent to where a team's matchers test it."""
        return self.choose(record.labels, record.annotations, record.receiver).name

    def routing_key(self, name: str) -> SecretStr | None:
        """The PagerDuty routing key incidents of ``name`` page: the team's, else the default's."""
        team = self.get(name)
        return self.routing_keys.get(team.name) or self.routing_keys.get(DEFAULT_TEAM)

    def announce_channel(self, name: str) -> str:
        team = self.get(name)
        return team.announce_channel or self.default.announce_channel or "incidents"

    def components(self, name: str) -> dict[str, str]:
        team = self.get(name)
        chosen = team.status_page_components
        return dict(chosen if chosen is not None else self.default.status_page_components or {})


def default_team(
    routing_key: SecretStr | None,
    announce_channel: str,
    components: Mapping[str, str],
) -> tuple[Team, dict[str, SecretStr]]:
    """The implicit default team from today's settings, and its routing key (if any)."""
    team = Team(
        name=DEFAULT_TEAM,
        announce_channel=announce_channel,
        status_page_components=dict(components),
    )
    return team, ({DEFAULT_TEAM: routing_key} if routing_key is not None else {})


# --- reading the file, with lines -----------------------------------------------------------


def _duplicate_key(node: yaml.Node) -> tuple[int, str] | None:
    """The line and name of the first key written twice in a mapping (YAML would keep the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    return key.start_mark.line + 1, key.value
                seen.add(key.value)
            if (found := _duplicate_key(value)) is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if (found := _duplicate_key(item)) is not None:
                return found
    return None


def _message(error: Any) -> str:
    loc = [str(p) for p in error["loc"]]
    if error["type"] == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(p for p in loc[2:] if not p.isdigit()) if loc[:1] == ["teams"] else ".".join(loc)
    return f"{where}: {message}" if where else message


def parse_teams(text: str, default: Team, source: str = "teams.yaml") -> Teams:
    """Parse a teams file; raises :class:`TeamsError` naming ``source`` and the line. The
    routing keys are not read here (:func:`resolve_routing_keys`)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise TeamsError(f"{source}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if node is None:
        return Teams((), default, source=source)
    if (duplicate := _duplicate_key(node)) is not None:
        raise TeamsError(f"{source}:{duplicate[0]}: duplicate key {duplicate[1]!r}")
    if not isinstance(document, dict):
        raise TeamsError(f"{source}:1: expected a mapping with a 'teams' list")
    try:
        parsed = _File.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise TeamsError(f"{source}:{line_of(node, error['loc'])}: {_message(error)}") from None
    names: set[str] = {DEFAULT_TEAM}
    lines: dict[str, int] = {}
    for index, team in enumerate(parsed.teams):
        line = lines[team.name] = line_of(node, ("teams", index))
        if team.name in names:
            problem = "is the implicit team" if team.name == DEFAULT_TEAM else "is named twice"
            raise TeamsError(f"{source}:{line}: team {team.name!r} {problem}")
        if not team.matchers:
            raise TeamsError(f"{source}:{line}: team {team.name!r} needs at least one matcher")
        names.add(team.name)
    return Teams(parsed.teams, default, source=source, lines=lines)


def _read_ref(
    ref: SecretRef, environ: Mapping[str, str], read: Callable[[Path], str]
) -> tuple[str | None, str]:
    """The secret ``ref`` names (None when missing or empty) and, for an error, why not."""
    if ref.env is not None:
        value = environ.get(ref.env)
        problem = f"environment variable {ref.env} is not set"
    else:
        assert ref.file is not None
        try:
            value = read(ref.file)
        except TextFileError as exc:
            return None, f"file {exc}"
        problem = f"file {ref.file} is empty"
    value = value.strip() if value is not None else None
    return value or None, problem


def resolve_routing_keys(
    teams: Teams,
    environ: Mapping[str, str],
    read: Callable[[Path], str] = read_text,
) -> Teams:
    """The teams with every routing key reference read, the escalation services' included; an
    unset variable, an unreadable or empty file is a :class:`TeamsError` naming the team and the
    reference, never a value."""
    keys = dict(teams.routing_keys)
    escalation: dict[str, dict[str, SecretStr]] = {}
    for team in teams.teams:
        where = f"{teams.source}:{teams.lines.get(team.name, 1)}: team {team.name!r}"
        refs = {"": team.routing_key} if team.routing_key is not None else {}
        if team.escalation is not None:
            refs.update(team.escalation.routing_keys)
        for target, ref in refs.items():
            value, problem = _read_ref(ref, environ, read)
            what = f"escalation routing key {target!r}" if target else "routing key"
            if value is None:
                raise TeamsError(f"{where}: {what}: {problem}")
            if target:
                escalation.setdefault(team.name, {})[target] = SecretStr(value)
            else:
                keys[team.name] = SecretStr(value)
    return Teams(teams.teams, teams.default, keys, teams.source, teams.lines, escalation)
