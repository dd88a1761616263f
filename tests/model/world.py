"""The world around the pipeline, simulated for the model-based test: Alertmanager, receiver
replicas with skewed clocks, a Kafka alerts topic with partitions and offsets, a consumer that
commits and crashes, and operators sending commands.

Written apart from the code under test: nothing here imports sevflow's rules, only its wire
formats (``AlertRecord``, ``Command``) and the fingerprint Alertmanager computes.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models.alert import AlertRecord
from models.alertmanager import format_group_key
from models.fingerprint import fingerprint

__all__ = [
    "ALERTS",
    "PARTITIONS",
    "QUIET",
    "REOPEN",
    "ROUTES",
    "SKEWS",
    "STALE_RESOLUTION",
    "START",
    "AlertSpec",
    "Offered",
    "Topic",
    "World",
]

START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
QUIET = timedelta(minutes=15)
REOPEN = timedelta(hours=1)
#: sevflow's documented rule: a resolution that ended more than this before the alert's current
#: firing started is a late copy of an earlier episode's and is ignored.
STALE_RESOLUTION = timedelta(seconds=60)
PARTITIONS = 2
#: Receiver replicas' clock offsets: one right, one ahead, one behind.
SKEWS = (timedelta(0), timedelta(minutes=5), timedelta(minutes=-5))


@dataclass(frozen=True)
class AlertSpec:
    """One alert of the universe: its labels and the routes (groups) Alertmanager sends it in."""

    labels: tuple[tuple[str, str], ...]
    routes: tuple[str, ...]

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.label_dict)

    @property
    def partition(self) -> int:
        return int(self.fingerprint, 16) % PARTITIONS


#: Route name → its group key. "db-team" is a second route (``continue: true``) of DbSlow alerts.
ROUTES = {
    "api": format_group_key({"alertname": "ApiDown"}),
    "db": format_group_key({"alertname": "DbSlow"}),
    "db-team": '{}/{team="db"}:{alertname="DbSlow"}',
}

ALERTS = (
    AlertSpec((("alertname", "ApiDown"), ("instance", "api-0"), ("severity", "critical")), ("api",)),
    AlertSpec((("alertname", "ApiDown"), ("instance", "api-1"), ("severity", "critical")), ("api",)),
    AlertSpec(
        (("alertname", "DbSlow"), ("instance", "db-0"), ("severity", "warning"), ("team", "db")),
        ("db", "db-team"),
    ),
    AlertSpec(
        (("alertname", "DbSlow"), ("instance", "db-1"), ("severity", "warning"), ("team", "db")),
        ("db", "db-team"),
    ),
)


@dataclass
class AmAlert:
    """Alertmanager's view of one alert."""

    firing: bool
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class Offered:
    """A record on the topic: its value and where it sits."""

    record: AlertRecord
    partition: int
    offset: int


@dataclass
class Topic:
    """The alerts topic: partitions of records, a consumer's position and committed offsets."""

    log: list[list[Offered]] = field(default_factory=lambda: [[] for _ in range(PARTITIONS)])
    position: list[int] = field(default_factory=lambda: [0] * PARTITIONS)
    committed: list[int] = field(default_factory=lambda: [0] * PARTITIONS)
    #: The highest offset ever applied per partition, plus one (survives crashes: it is the store's).
    applied: list[int] = field(default_factory=lambda: [0] * PARTITIONS)

    def append(self, record: AlertRecord, partition: int) -> None:
        self.log[partition].append(Offered(record, partition, len(self.log[partition])))

    def take(self, partition: int, count: int) -> list[Offered]:
        start = self.position[partition]
        taken = self.log[partition][start : start + count]
        self.position[partition] = start + len(taken)
        return taken

    def lag(self, partition: int) -> int:
        """Records not yet committed (what a lag probe measures from committed offsets)."""
        return len(self.log[partition]) - self.committed[partition]

    def commit(self) -> None:
        self.committed = list(self.position)

    def crash(self) -> None:
        """A worker crash: what was consumed and not committed is delivered again."""
        self.position = list(self.committed)


@dataclass
class World:
    """Alertmanager and the receiver replicas, on a true clock the test advances."""

    now: datetime = START
    alerts: dict[int, AmAlert] = field(default_factory=dict)
    topic: Topic = field(default_factory=Topic)
    #: The last payload per route, kept for an HA peer's late copy: (alert index, state) pairs.
    last_sent: dict[str, list[tuple[int, AmAlert]]] = field(default_factory=dict)
    ticks: int = 0

    def stamp(self, replica: int) -> datetime:
        """A receiver replica's clock: skewed, and distinct per record for readability."""
        self.ticks += 1
        return self.now + SKEWS[replica] + timedelta(microseconds=self.ticks)

    def fire(self, index: int) -> None:
        state = self.alerts.get(index)
        if state is None or not state.firing:
            self.alerts[index] = AmAlert(True, self.now, None)

    def resolve(self, index: int) -> None:
        state = self.alerts.get(index)
        if state is not None and state.firing:
            self.alerts[index] = AmAlert(False, state.starts_at, self.now)

    def notify(self, route: str, replica: int) -> None:
        """Alertmanager's notification of ``route``'s group: every alert of it that has a state."""
        payload = [
            (i, AmAlert(s.firing, s.starts_at, s.ends_at))
            for i, s in sorted(self.alerts.items())
            if route in ALERTS[i].routes
        ]
        if payload:
            self.last_sent[route] = payload
            self.send(route, payload, replica)

    def send(self, route: str, payload: list[tuple[int, AmAlert]], replica: int) -> None:
        received = self.stamp(replica)
        for index, state in payload:
            spec = ALERTS[index]
            record = AlertRecord(
                fingerprint=spec.fingerprint,
                status="firing" if state.firing else "resolved",
                labels=spec.label_dict,
                annotations={
                    "summary": f"{spec.label_dict['alertname']} on {spec.label_dict['instance']}"
                },
                starts_at=state.starts_at,
                ends_at=state.ends_at,
                receiver=route,
                group_key=ROUTES[route],
                received_at=received,
            )
            self.topic.append(record, spec.partition)
