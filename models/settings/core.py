"""Core settings: Kafka, the store, logging."""

import ipaddress
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from models.topics import BROKER_DEFAULT, TopicSpec, parse_topic_overrides

__all__ = ["CoreSettings"]

_HOST = re.compile(r"[A-Za-z0-9._\-]+")
_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?")


def _server_address(server: str) -> bool:
    """True for the forms the Kafka client parses: ``host``, ``host:port``, ``[v6]`` or
    ``[v6]:port``, or a bare IPv6 address (no port: the client's default)."""
    if bracketed := _BRACKETED.fullmatch(server):
        host, port = bracketed.group(1), bracketed.group(2)
        return _ipv6(host) and (port is None or _port(port))
    if server.count(":") > 1:
        return _ipv6(server)
    host, colon, port = server.partition(":")
    return bool(_HOST.fullmatch(host)) and (not colon or _port(port))


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _port(text: str) -> bool:
    return len(text) <= 5 and text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


class CoreSettings(BaseModel):
    """Where Kafka and the store are, and how sevflow logs."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    retention_days: int = Field(
        default=400,
        ge=0,
        le=36_500,  # a century: beyond it the cut-off leaves the calendar (a traceback in purge)
        description="`sevflow purge` without --older-than deletes the alerts, events and delivery "
        "logs of incidents resolved longer ago than this (labels can carry personal data); the "
        "incident rows `sevflow report` needs stay unless --incidents. 0: keep for ever.",
    )
    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="Kafka bootstrap servers, comma separated host:port (the local broker of "
        "scripts/kafka.sh by default).",
    )
    alerts_topic: str = Field(
        default="sevflow-alerts",
        description="Topic the receiver writes one record per alert to, keyed by fingerprint.",
    )
    topic_partitions: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description="Partitions of the topics sevflow creates; faust's tables need the same count "
        "on every topic of one pipeline, so set it before the first start.",
    )
    topic_replication_factor: int = Field(
        default=BROKER_DEFAULT,
        ge=-1,
        le=32_767,
        description="Replication factor of the topics sevflow creates; -1: the cluster's "
        "default.replication.factor. Existing topics are checked against it at start. 3 on a "
        "production cluster; the single-node development broker has 1.",
    )
    topic_min_insync_replicas: int = Field(
        default=0,
        ge=0,
        le=32_767,
        description="min.insync.replicas of the topics sevflow creates (how many replicas must "
        "have a record before Kafka acknowledges it); 0: replication factor - 1 from 2 "
        "replicas up, else 1. Existing topics are checked against it at start.",
    )
    topic_retention_ms: int = Field(
        default=0,
        ge=-1,
        le=2**63 - 1,
        description="retention.ms of the topics sevflow creates; 0: the broker's log.retention; "
        "-1: keep for ever. An existing topic with another retention is a warning at start.",
    )
    topic_overrides: str = Field(
        default="",
        description="Replication factor, min.insync.replicas and retention of single topics, over "
        "the SEVFLOW_TOPIC_* values, in Kafka's config names: "
        "<topic>:<config>=<value>,…;<topic>:…, e.g. "
        "'incident-events:retention.ms=-1;sevflow-alerts:retention.ms=604800000,"
        "min.insync.replicas=2' (configs: replication.factor, min.insync.replicas, "
        "retention.ms). Checked at start like the global values; empty: none.",
    )
    app_id: str = Field(
        default="sevflow",
        description="Stream application id: the Kafka consumer group and the prefix of faust's "
        "internal topics.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the incident store, e.g. postgresql://user:pw@host/db. "
        "Unset: an SQLite file in SEVFLOW_DATA_DIR.",
    )
    data_dir: Path = Field(
        default=Path(".sevflow"),
        description="Directory for the embedded SQLite database and the stream worker's state.",
    )
    log_level: str = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_servers(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("no server: give host:port, comma separated")
        for server in servers:
            if not _server_address(server):
                raise ValueError(
                    f"{server!r} is not host:port (port 1-65535; an IPv6 address in brackets)"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    def topic_spec(self, name: str) -> TopicSpec:
        """How sevflow creates and checks the topic ``name``: the SEVFLOW_TOPIC_* values, with
        the topic's SEVFLOW_TOPIC_OVERRIDES over them."""
        return TopicSpec(
            name,
            self.topic_partitions,
            self.topic_replication_factor,
            self.topic_min_insync_replicas or None,
            self.topic_retention_ms or None,
        ).overridden_by(parse_topic_overrides(self.topic_overrides).get(name))

    @field_validator("topic_overrides")
    @classmethod
    def _topic_overrides(cls, value: str) -> str:
        parse_topic_overrides(value)  # its ValueError names the part that is wrong
        return value

    @field_validator("topic_replication_factor")
    @classmethod
    def _replication_factor(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 replicas: give 1 or more, or -1 for the cluster's default")
        return value

    def sqlalchemy_url(self) -> str:
        """The configured database URL, or the embedded SQLite file's."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'sevflow.db').resolve()}"
