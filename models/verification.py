"""Verified resolution: the probes that must pass before a quiet incident resolves.

The playbook verifies a fix before closing an incident: a health check (``curl -sf …/health``),
the error rate decreasing, 15 minutes of watching. A :class:`Probe` is configured per service or
by matchers (``SEVFLOW_VERIFY_PROBES``, ``SEVFLOW_VERIFY_FILE`` or the rules file's ``probes``;
models/probe_file.py reads the files with lines): an HTTP health URL that must answer 2xx
and/or a PromQL expression that must return a non-empty, truthy result. A probe's matchers use
the severity rules' syntax (:mod:`models.matchers`) and test what the incident itself records,
the same at every run: ``service`` (each of its services, in the order they fired), ``team``
and ``severity`` (SEV1..SEV4); the first probe that matches, service by service, verifies it.

**Which time decides what.** A result's ``checked_at`` is the probe runner's clock; the quiet
period and its expiry are record time (the watermark, streams/record_time.py). A result names
the quiet period it was taken in (``quiet_since`` as the runner read it) and applies to that
quiet period only: never to a later one, whatever the runner's clock says; a result taken in it
by a clock behind record time counts from the quiet period's start
(:func:`apply_probe_result`). The worker's probe runner
(streams/probes.py) checks the probe of every incident in its quiet period and publishes each
outcome as a :class:`ProbeResult` record; the pipeline applies those records like commands
(:func:`models.incident.apply_probe_result`), so a replay reaches the same decisions.

Nothing here does I/O or reads a clock.
"""

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from models.alert import RecordTime
from models.events import EventType
from models.incident import COMMAND_ID_MAX, INCIDENT_ID_MAX, SEVFLOW, Incident, Outcome, annotate
from models.matchers import Matcher, MatcherError, parse_matcher

__all__ = [
    "PROBE_MATCHER_NAMES",
    "PROBE_RESULT_SCHEMA_VERSION",
    "Probe",
    "ProbeChoice",
    "ProbeResult",
    "ProbeSet",
    "apply_probe_result",
    "parse_probes",
    "result_id",
]

#: Version of the probe-results topic's records (fields are only ever added).
PROBE_RESULT_SCHEMA_VERSION = 1
#: How much of a probe's answer a result keeps (it is shown in the incident channel).
DETAIL_MAX = 500
PROBE_NAME_MAX = 500
#: What a probe's matchers can test: what the incident records (the probe is chosen again at
#: every run and when its quiet period expires, from the incident alone).
PROBE_MATCHER_NAMES = ("service", "team", "severity")


def _own_service_url(url: str, what: str) -> str:
    """``url`` when it is https, or http to a loopback or private address (the organisation's
    own service, probed from inside its network); a ValueError naming ``what`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {url!r} is not an http(s) URL")
    if parts.scheme == "https":
        return url
    host = parts.hostname
    if host == "localhost":
        return url
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{what} {url!r}: plain http only to a loopback or private address; use https"
        ) from None
    if not (address.is_loopback or address.is_private):
        raise ValueError(f"{what} {url!r}: plain http only to a loopback or private address")
    return url


class Probe(BaseModel):
    """The verification of one service: every check given must pass."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    service: str | None = Field(
        default=None, min_length=1, description='The `service` it verifies (`service="…"`).'
    )
    matchers: tuple[str, ...] = Field(
        default=(),
        description="Matchers that must all match: service, team, severity (SEV1..SEV4).",
    )
    http_url: str | None = Field(default=None, description="A health URL that must answer 2xx.")
    promql: str | None = Field(
        default=None, description="A PromQL expression that must return a non-empty, truthy result."
    )
    prometheus_url: str | None = Field(default=None, description="The Prometheus `promql` asks.")

    @model_validator(mode="after")
    def _checks(self) -> "Probe":
        if self.service is None and not self.matchers:
            raise ValueError("a probe needs a service, matchers, or both")
        self.parsed_matchers()  # a bad matcher is refused here, with the probe
        if self.http_url is None and self.promql is None:
            raise ValueError(f"probe of {self.selector}: give http_url, promql, or both")
        if (self.promql is None) != (self.prometheus_url is None):
            raise ValueError(f"probe of {self.selector}: promql and prometheus_url go together")
        if self.http_url is not None:
            _own_service_url(self.http_url, "http_url")
        if self.prometheus_url is not None:
            _own_service_url(self.prometheus_url, "prometheus_url")
        return self

    def parsed_matchers(self) -> tuple[Matcher, ...]:
        """``service="…"`` (when given) and the matchers; a ValueError for a bad one."""
        texts = ((f'service="{self.service}"',) if self.service is not None else ()) + self.matchers
        try:
            parsed = tuple(parse_matcher(text) for text in texts)
        except MatcherError as exc:
            raise ValueError(f"bad matcher: {exc}") from None
        for matcher in parsed:
            if matcher.name not in PROBE_MATCHER_NAMES:
                raise ValueError(
                    f"matcher {matcher}: a probe's matchers test {', '.join(PROBE_MATCHER_NAMES)} "
                    "(what the incident records), not alert labels"
                )
        return parsed

    @property
    def selector(self) -> str:
        """Which incidents the probe verifies, as written: ``service="api", team="payments"``."""
        return ", ".join(str(m) for m in self.parsed_matchers())

    @property
    def name(self) -> str:
        """How results and messages name the probe."""
        checks = []
        if self.http_url is not None:
            checks.append(f"GET {self.http_url}")
        if self.promql is not None:
            checks.append(f"PromQL {self.promql}")
        return " and ".join(checks)[:PROBE_NAME_MAX]


_PROBES = TypeAdapter(list[Probe])


@dataclass(frozen=True)
class ProbeChoice:
    """The probe that verifies an incident (None: none does), the service it matched with, and
    every probe tried before it with its first failing matcher (``sevflow explain``)."""

    probe: Probe | None
    service: str | None = None
    tried: list[tuple[str, str]] = field(default_factory=list)


class ProbeSet:
    """The configured probes, in order (the setting's, the file's, then the rules file's)."""

    def __init__(self, probes: Iterable[Probe] = ()) -> None:
        self._probes: list[tuple[Probe, tuple[Matcher, ...]]] = []
        seen: set[str] = set()
        for probe in probes:
            if probe.selector in seen:
                raise ValueError(f"two probes for {probe.selector}")
            seen.add(probe.selector)
            self._probes.append((probe, probe.parsed_matchers()))

    def __bool__(self) -> bool:
        return bool(self._probes)

    def probes(self) -> tuple[Probe, ...]:
        return tuple(probe for probe, _ in self._probes)

    def choose(self, services: Sequence[str], team: str, severity: str) -> ProbeChoice:
        """The first probe whose matchers all match, trying the incident's ``services`` in the
        order they fired (an incident without a service is tried once, as service "")."""
        tried: list[tuple[str, str]] = []
        for service in services or ("",):
            facts = {"service": service, "team": team, "severity": severity}
            for probe, matchers in self._probes:
                failing = next((m for m in matchers if not m.matches(facts, {})), None)
                if failing is None:
                    return ProbeChoice(probe, service, tried)
                tried.append((probe.selector, f"{failing} (service {service or '-'})"))
        return ProbeChoice(None, None, tried)

    def for_incident(self, incident: Incident) -> Probe | None:
        """The probe that verifies ``incident``; None: it resolves on the quiet period alone."""
        return self.choose(incident.services, incident.team, incident.severity.value).probe

    def for_services(
        self, services: Sequence[str], team: str = "default", severity: str = ""
    ) -> Probe | None:
        """The probe of the first of ``services`` that has one (:meth:`choose`)."""
        return self.choose(services, team, severity).probe


def parse_probes(text: str) -> ProbeSet:
    """``[{"service": "api", "http_url": "https://…/health"}, …]`` → the probe set; "" → none."""
    if not text.strip():
        return ProbeSet()
    return ProbeSet(_PROBES.validate_python(json.loads(text)))


def result_id(incident_id: str, episode: int, probe: str, checked_at: datetime) -> str:
    """The idempotency key of one probe run: the same run published twice is applied once."""
    seed = f"{incident_id}\x00{episode}\x00{probe}\x00{checked_at.isoformat()}"
    return "probe_" + hashlib.sha256(seed.encode()).hexdigest()[:32]


class ProbeResult(BaseModel):
    """One run of an incident's probe (the probe-results topic, keyed by incident id).

    This is a wire format other processes read: fields are only ever added."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    schema_version: int = PROBE_RESULT_SCHEMA_VERSION
    result_id: str = Field(min_length=1, max_length=COMMAND_ID_MAX)
    incident_id: str = Field(min_length=1, max_length=INCIDENT_ID_MAX)
    episode: int = Field(ge=0, description="The incident's ``flaps`` when the probe ran.")
    probe: str = Field(min_length=1, max_length=PROBE_NAME_MAX)
    ok: bool
    detail: str = Field(default="", max_length=DETAIL_MAX)
    checked_at: RecordTime = Field(description="When the probe ran (the runner's clock).")
    quiet_since: RecordTime | None = Field(
        default=None,
        description="The quiet period the probe ran in (the incident's ``quiet_since`` as the "
        "runner read it); None in records written before it was kept.",
    )

    @classmethod
    def of(
        cls,
        incident_id: str,
        episode: int,
        probe: str,
        ok: bool,
        detail: str,
        checked_at: datetime,
        quiet_since: datetime | None = None,
    ) -> "ProbeResult":
        return cls(
            quiet_since=quiet_since,
            result_id=result_id(incident_id, episode, probe, checked_at),
            incident_id=incident_id,
            episode=episode,
            probe=probe,
            ok=ok,
            detail=detail[:DETAIL_MAX],
            checked_at=checked_at,
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def _duration(period: timedelta) -> str:
    """``15m``, ``90s``, ``2h``: how the incident channel names the watch."""
    seconds = int(period.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def apply_probe_result(
    incident: Incident, result: ProbeResult, quiet_period: timedelta
) -> Outcome | None:
    """Apply one probe result to its incident, at the result's ``checked_at``.

    Only a result for the incident's current episode and current quiet period counts: the one
    the result names (``quiet_since``, compared exactly, so a result never moves to a later
    quiet period whatever the runner's clock), or for older records without it, one whose
    ``checked_at`` is not before the quiet period's start. A result of the named quiet period
    dated before its start (a runner clock behind record time) counts at the start. None
    otherwise, and when nothing changes. A failure puts the incident
    in ``monitoring`` and starts its quiet period again at the result's time (the
    ``verification_failed`` event says why, once per run of failures); a pass records when it
    passed (:func:`models.incident.verified`), and after a failure says so
    (``verification_passed``). A new firing alert ends the watch as it ends the quiet period
    (:func:`models.incident.apply_alert`).
    """
    if (
        not incident.is_open
        or result.episode != incident.flaps
        or incident.alerts_firing
        or incident.quiet_since is None
    ):
        return None
    if result.quiet_since is not None:
        if result.quiet_since != incident.quiet_since:
            return None  # taken in another quiet period
        now = max(result.checked_at, incident.quiet_since)
    elif result.checked_at < incident.quiet_since:
        return None
    else:
        now = result.checked_at
    if not result.ok:
        changed = incident.model_copy(
            update={"monitoring": True, "verified_at": None, "quiet_since": now}
        )
        if incident.monitoring:
            return Outcome(changed)  # still failing: the watch starts again, said once
        watch = _duration(quiet_period)
        return annotate(
            changed,
            EventType.VERIFICATION_FAILED,
            SEVFLOW,
            now,
            reason=f"{result.probe}: {result.detail}" if result.detail else result.probe,
            data={"probe": result.probe, "detail": result.detail, "watch": watch},
        )
    changed = incident.model_copy(update={"monitoring": False, "verified_at": now})
    if incident.monitoring:
        return annotate(
            changed,
            EventType.VERIFICATION_PASSED,
            SEVFLOW,
            now,
            reason=f"{result.probe} passed",
            data={"probe": result.probe, "watch": _duration(quiet_period)},
        )
    return Outcome(changed) if changed != incident else None
