"""Builders for alert records and commands used across tests."""

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from models.access import ApiToken, Scope
from models.alert import AlertRecord
from models.alertmanager import format_group_key
from models.events import Actor
from models.fingerprint import fingerprint
from models.incident import Command
from receiver.access import Credentials

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def alert(
    alertname: str = "HighErrorRate",
    *,
    status: str = "firing",
    at: datetime = T0,
    severity: str = "critical",
    group: str | None = None,
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> AlertRecord:
    """An alert record as the receiver writes it, grouped by alertname unless ``group`` is given."""
    all_labels = {"alertname": alertname, "severity": severity, **labels}
    return AlertRecord(
        fingerprint=fingerprint(all_labels),
        status=status,  # type: ignore[arg-type]
        labels=all_labels,
        annotations=annotations if annotations is not None else {"summary": f"{alertname} fired"},
        starts_at=at - timedelta(minutes=1),
        ends_at=at if status == "resolved" else None,
        generator_url="http://prometheus.test/graph",
        receiver="sevflow",
        group_key=group or format_group_key({"alertname": alertname}),
        external_url="http://alertmanager.test",
        received_at=at,
    )


def command(
    incident_id: str, action: str = "acknowledge", *, at: datetime = T0, command_id: str = "c1"
) -> Command:
    return Command(
        command_id=command_id,
        action=action,  # type: ignore[arg-type]
        incident_id=incident_id,
        actor=Actor(via="cli", name="alice"),
        requested_at=at,
    )


class CommandRecorder:
    """The Kafka boundary of the command routes and CLI: records what would have been published."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    async def publish(self, command: Command) -> None:
        self.commands.append(command)


def api_credentials(
    *secrets: "SecretStr | str", scopes: str = "read,write", name: str = "ops"
) -> Credentials:
    """Credentials holding ``secrets`` as API tokens named ``name`` with ``scopes``."""
    return Credentials(
        [
            ApiToken(
                name=name,
                scopes=frozenset(Scope(s) for s in scopes.split(",")),
                secret=s if isinstance(s, SecretStr) else SecretStr(s),
            )
            for s in secrets
        ]
    )
