"""Real incident events for sink tests, made the way the stream worker makes them: by the pure
lifecycle functions of models.incident (apply_alert, apply_command)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.alert import AlertRecord
from models.events import Actor, EventType, IncidentEvent
from models.incident import (
    AlertState,
    Classification,
    Command,
    Incident,
    LifecyclePolicy,
    annotate,
    apply_alert,
    apply_command,
)
from models.runbooks import RunbookSet
from models.severity import Severity

__all__ = ["T0", "IncidentStory"]

from datetime import UTC

T0 = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)
POLICY = LifecyclePolicy()


@dataclass
class IncidentStory:
    """One incident's life, step by step; ``events`` collects everything it emitted."""

    name: str = "HighErrorRate"
    severity: Severity = Severity.SEV2
    service: str = "api"
    summary: str = "API Error Rate Spike"
    impact: str | None = "Users experiencing slow response times"
    group: str = ""
    #: The classification's flags (the rules' security / data_breach).
    security: bool = False
    data_breach: bool = False
    #: Labels and annotations every alert of the story carries besides the usual ones.
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    #: What the rules say of every alert of the story (a security incident, a data breach).
    security: bool = False
    data_breach: bool = False
    #: The runbooks an incident the story opens is matched against (None: it gets none).
    runbooks: RunbookSet | None = None
    incident: Incident | None = None
    alerts: dict[str, AlertState] = field(default_factory=dict)
    events: list[IncidentEvent] = field(default_factory=list)

    def _record(
        self, fingerprint: str, status: str, at: datetime, instance: str, started: datetime | None = None
    ) -> AlertRecord:
        annotations = {"summary": self.summary, "runbook_url": "https://runbooks.example.com/api-errors"}
        if self.impact:
            annotations["impact"] = self.impact
        labels = {"alertname": self.name, "service": self.service, "instance": instance, "job": "api"}
        return AlertRecord(
            fingerprint=fingerprint,
            status=status,  # type: ignore[arg-type]
            labels={**self.labels, **labels},
            annotations={**annotations, **self.annotations},
            starts_at=started or at,
            ends_at=at if status == "resolved" else None,
            generator_url="http://prometheus.example.com/graph?g0.expr=up",
            receiver="sevflow",
            group_key=self.group or f'{{}}:{{alertname="{self.name}"}}',
            external_url="http://alertmanager.example.com:9093",
            received_at=at,
        )

    def fire(self, fingerprint: str = "fp1", at: datetime = T0, instance: str = "api-1",
             severity: Severity | None = None,
             started: datetime | None = None) -> list[IncidentEvent]:  # fmt: skip
        """``started``: the alert's startsAt when it is not ``at`` (Alertmanager's group_wait)."""
        record = self._record(fingerprint, "firing", at, instance, started)
        cls = Classification(
            severity=severity or self.severity,
            rule="test-rule",
            security=self.security or self.data_breach,
            data_breach=self.data_breach,
        )
        chooser = self.runbooks.for_record if self.runbooks is not None else None
        previous = self.alerts.get(fingerprint)
        return self._apply(
            apply_alert(self.incident, previous, record, cls, POLICY, at, runbook_for=chooser)
        )

    def resolve_alert(self, fingerprint: str = "fp1", at: datetime = T0) -> list[IncidentEvent]:
        record = self._record(fingerprint, "resolved", at, "api-1")
        cls = Classification(severity=self.severity, rule="test-rule")
        return self._apply(
            apply_alert(self.incident, self.alerts.get(fingerprint), record, cls, POLICY, at)
        )

    def command(
        self, action: str, at: datetime, who: str = "alice", via: str = "slack", **details: str
    ) -> list[IncidentEvent]:
        """``details``: a resolution's root_cause, fix, follow_up."""
        assert self.incident is not None
        command = Command(
            command_id=f"{action}-{at.isoformat()}",
            action=action,  # type: ignore[arg-type]
            incident_id=self.incident.id,
            actor=Actor(via=via, name=who),
            requested_at=at,
            **details,
        )
        return self._apply(apply_command(self.incident, command, at))

    def publish(
        self, title: str, body: str, at: datetime = T0 + timedelta(minutes=10), who: str = "carol"
    ) -> list[IncidentEvent]:
        """``sevflow statuspage publish``: the operator's public words."""
        assert self.incident is not None
        command = Command(
            command_id=f"publish-{at.isoformat()}",
            action="publish",
            incident_id=self.incident.id,
            actor=Actor(via="cli", name=who),
            requested_at=at,
            public_title=title,
            public_body=body,
        )
        return self._apply(apply_command(self.incident, command, at))

    def ack(self, at: datetime = T0 + timedelta(minutes=5), who: str = "alice") -> list[IncidentEvent]:
        return self.command("acknowledge", at, who)

    def resolve(
        self, at: datetime = T0 + timedelta(minutes=45), who: str = "alice", **details: str
    ) -> list[IncidentEvent]:
        return self.command("resolve", at, who, **details)

    def escalate(self, data: dict[str, str], at: datetime, reason: str) -> list[IncidentEvent]:
        """An ``escalated`` event as the worker's escalation loop records it."""
        assert self.incident is not None
        outcome = annotate(
            self.incident, EventType.ESCALATED, Actor(via="sevflow"), at, reason=reason, data=data
        )
        return self._apply(outcome)

    def _apply(self, outcome):  # type: ignore[no-untyped-def]
        if outcome is None:
            return []
        self.incident = outcome.incident
        if outcome.alert is not None:
            self.alerts[outcome.alert.fingerprint] = outcome.alert
        self.events.extend(outcome.events)
        return list(outcome.events)
