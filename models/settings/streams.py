"""The stream worker: classification, grouping, lifecycle, the incident-events topic."""

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

if TYPE_CHECKING:
    from models.incident import LifecyclePolicy

__all__ = ["StreamSettings"]


#: The longest quiet period or reopen window taken (in seconds): ``inf`` or 1e11 passed as a
#: number and overflowed the times they are added to, at start or at every tick.
_A_YEAR = 366 * 24 * 3600


class StreamSettings(BaseModel):
    """The stream worker: classification, grouping, lifecycle, the incident-events topic."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    rules_file: Path | None = Field(
        default=None,
        description="YAML severity rules (first match wins). Unset: the shipped rules that encode "
        "the playbook's SEV table (streams/rules/default.yaml).",
    )
    runbooks_dir: Path | None = Field(
        default=None,
        description="Folder of Markdown runbooks (`*.md` with `title` and `matchers` front "
        "matter) added to the shipped four of the playbook; a file of the same name replaces a "
        "shipped one. Unset: the shipped runbooks only (streams/runbooks/).",
    )
    runbooks_url: str | None = Field(
        default=None,
        description="Where the runbooks are published for a browser, `{name}` standing for a "
        "runbook's file name without .md (e.g. https://git.example.com/ops/runbooks/-/blob/main/"
        "{name}.md): the PagerDuty event links it. Unset: the event carries the runbook's text "
        "only.",
    )
    events_topic: str = Field(
        default="incident-events",
        description="Topic every incident change is published on, keyed by incident id.",
    )
    commands_topic: str = Field(
        default="sevflow-commands",
        description="Topic of manual acknowledge/resolve commands, keyed by incident id.",
    )
    alerts_quarantine_topic: str = Field(
        default="sevflow-alerts-quarantine",
        description="Topic the worker sets poison alert records aside on (they do not decode, "
        "or the store refuses them for good), with the reason and the original bytes.",
    )
    commands_quarantine_topic: str = Field(
        default="sevflow-commands-quarantine",
        description="Topic the worker sets poison command records aside on, like the alerts'.",
    )
    worker_poison_limit: int = Field(
        default=100,
        ge=0,
        le=1_000_000,
        description="More poison records than this in a row (none applied between them) is a "
        "broken deploy, not poison: the worker quarantines no more and exits with status 70; "
        "0: no limit.",
    )
    group_by: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Labels that group alerts into one incident, comma separated. Unset: "
        "Alertmanager's groupKey (its route's group_by).",
    )
    quiet_period_seconds: float = Field(
        default=900,
        ge=0,
        le=_A_YEAR,
        description="All alerts of an incident resolved for this long resolves the incident "
        "(the playbook watches a fix for 15 minutes before closing); at most a year.",
    )
    reopen_window_seconds: float = Field(
        default=3600,
        ge=0,
        le=_A_YEAR,
        description="The same group firing again within this time after resolution reopens the "
        "incident (counted as a flap) instead of opening a new one; at most a year.",
    )
    blast_radius_instances: int = Field(
        default=5,
        ge=2,
        le=1_000_000,
        description="Distinct instances that have fired in one incident (since it opened) that "
        "raise its severity.",
    )
    blast_radius_services: int = Field(
        default=3, ge=2, le=1_000_000, description="Services in one incident that raise its severity."
    )
    worker_metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of the stream worker's Prometheus /metrics (consumer lag, outbox backlog, "
        "escalations), on SEVFLOW_HTTP_HOST; 0 turns it off. Each worker on a host needs its own.",
    )
    worker_stall_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="A worker whose own partitions have records waiting this long while its "
        "agents sit idle (faust's consumer stalled after a broker outage) exits with status 75 to "
        "be started again (sevflow run does; Kubernetes and Compose restart it); 0 turns it off.",
    )
    batch_size: int = Field(
        default=500, ge=1, le=10000, description="Alert records processed per transaction."
    )
    batch_window_seconds: float = Field(
        default=0.01,
        gt=0,
        le=5,
        description="How long the worker gathers alert records before a transaction (unless "
        "SEVFLOW_BATCH_SIZE arrive first) while no more wait in Kafka: the latency it adds at "
        "steady rates, against fewer and larger transactions (at 200 alerts/s, 0.01 pages "
        "8 ms sooner than 0.02 for about a tenth more CPU per alert in the worker and a fifth "
        "in the sinks). Over a backlog SEVFLOW_BATCH_BACKLOG_WINDOW_SECONDS applies.",
    )
    batch_backlog_window_seconds: float = Field(
        default=0.05,
        gt=0,
        le=5,
        description="How long in all the worker may keep gathering a batch while more alert "
        "records wait in Kafka (a backlog, a storm): larger batches drain it faster. Never "
        "shorter than SEVFLOW_BATCH_WINDOW_SECONDS.",
    )

    fetch_wait_seconds: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="While alerts flow, how long the broker may hold the worker's fetch to "
        "gather more (one fetch per wait instead of one per alert: at 200 alerts/s, 0.02 took "
        "a sixth off the worker's CPU per alert and added about 10 ms to its latency); a fetch "
        "that comes back empty ends it, so an idle worker polls as before. 0: every fetch is "
        "answered at the first record.",
    )

    @field_validator("group_by", mode="before")
    @classmethod
    def _split_labels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("runbooks_url")
    @classmethod
    def _runbooks_url(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith(("https://", "http://")) or "{name}" not in value
        ):
            raise ValueError("an http(s) URL with {name} where a runbook's name goes")
        return value

    def lifecycle_policy(self) -> "LifecyclePolicy":
        from models.incident import LifecyclePolicy  # the incident models: not every command's

        return LifecyclePolicy(
            quiet_period=timedelta(seconds=self.quiet_period_seconds),
            reopen_window=timedelta(seconds=self.reopen_window_seconds),
            blast_radius_instances=self.blast_radius_instances,
            blast_radius_services=self.blast_radius_services,
        )
