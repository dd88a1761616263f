"""Verified resolution: the probes that must pass before a quiet incident resolves.

The playbook verifies a fix before closing an incident: a health check (``curl -sf …/health``),
the error rate decreasing, 15 minutes of watching. A :class:`Probe` is configured per service
(``SEVFLOW_VERIFY_PROBES`` or ``SEVFLOW_VERIFY_FILE``): an HTTP health URL that must answer 2xx
and/or a PromQL expression that must return a non-empty, truthy result. The worker's probe runner
(streams/probes.py) checks the probe of every incident in its quiet period and publishes each
outcome as a :class:`ProbeResult` record; the pipeline applies those records like commands
(:func:`models.incident.apply_probe_result`), so a replay reaches the same decisions.

Nothing here does I/O or reads a clock.
"""

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from models.events import EventType
from models.incident import COMMAND_ID_MAX, INCIDENT_ID_MAX, SEVFLOW, Incident, Outcome, annotate

__all__ = [
    "PROBE_RESULT_SCHEMA_VERSION",
    "Probe",
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

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(min_length=1, description="The `service` label value it verifies.")
    http_url: str | None = Field(default=None, description="A health URL that must answer 2xx.")
    promql: str | None = Field(
        default=None, description="A PromQL expression that must return a non-empty, truthy result."
    )
    prometheus_url: str | None = Field(default=None, description="The Prometheus `promql` asks.")

    @model_validator(mode="after")
    def _checks(self) -> "Probe":
        if self.http_url is None and self.promql is None:
            raise ValueError(f"probe of {self.service}: give http_url, promql, or both")
        if (self.promql is None) != (self.prometheus_url is None):
            raise ValueError(f"probe of {self.service}: promql and prometheus_url go together")
        if self.http_url is not None:
            _own_service_url(self.http_url, "http_url")
        if self.prometheus_url is not None:
            _own_service_url(self.prometheus_url, "prometheus_url")
        return self

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


class ProbeSet:
    """The configured probes, by service."""

    def __init__(self, probes: Iterable[Probe] = ()) -> None:
        self._by_service: dict[str, Probe] = {}
        for probe in probes:
            if probe.service in self._by_service:
                raise ValueError(f"service {probe.service} has two probes")
            self._by_service[probe.service] = probe

    def __bool__(self) -> bool:
        return bool(self._by_service)

    def probes(self) -> tuple[Probe, ...]:
        return tuple(self._by_service.values())

    def for_services(self, services: Sequence[str]) -> Probe | None:
        """The probe of the first of ``services`` (an incident's, in the order they fired) that
        has one; None: the incident resolves as it always did, on the quiet period alone."""
        for service in services:
            if (probe := self._by_service.get(service)) is not None:
                return probe
        return None


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

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = PROBE_RESULT_SCHEMA_VERSION
    result_id: str = Field(min_length=1, max_length=COMMAND_ID_MAX)
    incident_id: str = Field(min_length=1, max_length=INCIDENT_ID_MAX)
    episode: int = Field(ge=0, description="The incident's ``flaps`` when the probe ran.")
    probe: str = Field(min_length=1, max_length=PROBE_NAME_MAX)
    ok: bool
    detail: str = Field(default="", max_length=DETAIL_MAX)
    checked_at: AwareDatetime = Field(description="When the probe ran (the runner's clock).")

    @classmethod
    def of(
        cls, incident_id: str, episode: int, probe: str, ok: bool, detail: str, checked_at: datetime
    ) -> "ProbeResult":
        return cls(
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

    Only a result for the incident's current episode, while all its alerts are resolved (its
    quiet period), counts; None otherwise, and when nothing changes. A failure puts the incident
    in ``monitoring`` and starts its quiet period again at the result's time (the
    ``verification_failed`` event says why, once per run of failures); a pass records when it
    passed (:func:`models.incident.verified`), and after a failure says so
    (``verification_passed``). A new firing alert ends the watch as it ends the quiet period
    (:func:`models.incident.apply_alert`).
    """
    now = result.checked_at
    if (
        not incident.is_open
        or result.episode != incident.flaps
        or incident.alerts_firing
        or incident.quiet_since is None
        or now < incident.quiet_since
    ):
        return None
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
