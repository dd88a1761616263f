"""The durability of sevflow's Kafka topics: what each topic should be, and how an existing topic
differs from it.

"Nothing accepted is lost" holds across the loss of a broker only when a topic has more than one
replica and a write needs more than one of them (``acks=all`` with ``min.insync.replicas``).
Kafka's own rule of thumb is replication factor 3 with ``min.insync.replicas`` 2: one broker may
fail with writes still accepted, and every acknowledged record is on two brokers
(https://kafka.apache.org/documentation/#design_ha). Hence the default here: the cluster's
``default.replication.factor`` and ``min.insync.replicas`` = RF - 1 from RF 2 up.

A topic that exists is checked against its spec (:func:`mismatches`): fewer partitions than
configured, another replication factor or another ``min.insync.replicas`` are problems that stop
the role (the guarantee would silently be weaker, or faust's co-partitioned tables wrong). More
partitions than configured and another ``retention.ms`` are warnings: the topic still keeps what
sevflow needs, and operators change retention with ``kafka-configs`` on purpose. Pure: the broker
side is kafka_admin/topics.py.
"""

from dataclasses import dataclass

__all__ = ["BROKER_DEFAULT", "TopicSpec", "TopicState", "mismatches"]

#: Kafka's "the broker's default.replication.factor" in a CreateTopics request (KIP-464).
BROKER_DEFAULT = -1


@dataclass(frozen=True)
class TopicSpec:
    """What sevflow creates ``name`` with, and checks it against."""

    name: str
    partitions: int
    #: :data:`BROKER_DEFAULT` for the cluster's ``default.replication.factor``.
    replication_factor: int = BROKER_DEFAULT
    #: None: RF - 1 from RF 2 up, else the broker's default (1).
    min_insync_replicas: int | None = None
    #: None: the broker's ``log.retention.*``.
    retention_ms: int | None = None

    def resolved(self, broker_default_rf: int) -> "TopicSpec":
        """This spec with the replication factor and ``min.insync.replicas`` as numbers, given the
        cluster's ``default.replication.factor``."""
        rf = broker_default_rf if self.replication_factor == BROKER_DEFAULT else self.replication_factor
        insync = self.min_insync_replicas
        if insync is None and rf >= 2:
            insync = rf - 1
        return TopicSpec(self.name, self.partitions, rf, insync, self.retention_ms)

    def configs(self) -> dict[str, str]:
        """The topic configs sevflow sets at creation (the rest are the broker's)."""
        configs = {}
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        return configs

    def problem(self, brokers: int) -> str | None:
        """Why a cluster of ``brokers`` brokers cannot hold this (resolved) spec, if it cannot."""
        if self.replication_factor > brokers:
            return (
                f"topic {self.name}: replication factor {self.replication_factor} needs as many "
                f"brokers, the cluster has {brokers} (set SEVFLOW_TOPIC_REPLICATION_FACTOR)"
            )
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            return (
                f"topic {self.name}: min.insync.replicas {self.min_insync_replicas} is more than "
                f"its replication factor {self.replication_factor}: no write could be accepted "
                "(set SEVFLOW_TOPIC_MIN_INSYNC_REPLICAS)"
            )
        return None


@dataclass(frozen=True)
class TopicState:
    """An existing topic as the cluster describes it."""

    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int


def mismatches(spec: TopicSpec, state: TopicState) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of ``state`` against the resolved ``spec``, each naming the topic,
    both values and the setting to change (see the module docstring for which is which)."""
    problems: list[str] = []
    warnings: list[str] = []
    name = spec.name
    if state.partitions < spec.partitions:
        problems.append(
            f"topic {name} has {state.partitions} partitions, SEVFLOW_TOPIC_PARTITIONS asks "
            f"{spec.partitions} (add partitions with kafka-topics --alter, or lower the setting)"
        )
    elif state.partitions > spec.partitions:
        warnings.append(
            f"topic {name} has {state.partitions} partitions, SEVFLOW_TOPIC_PARTITIONS asks "
            f"{spec.partitions}"
        )
    if state.replication_factor != spec.replication_factor:
        problems.append(
            f"topic {name} has replication factor {state.replication_factor}, sevflow expects "
            f"{spec.replication_factor} (SEVFLOW_TOPIC_REPLICATION_FACTOR; reassign its "
            "partitions with kafka-reassign-partitions)"
        )
    expected_insync = spec.min_insync_replicas if spec.min_insync_replicas is not None else 1
    if state.min_insync_replicas != expected_insync:
        problems.append(
            f"topic {name} has min.insync.replicas {state.min_insync_replicas}, sevflow expects "
            f"{expected_insync} (SEVFLOW_TOPIC_MIN_INSYNC_REPLICAS; change it with kafka-configs "
            "--alter)"
        )
    if spec.retention_ms is not None and state.retention_ms != spec.retention_ms:
        warnings.append(
            f"topic {name} has retention.ms {state.retention_ms}, SEVFLOW_TOPIC_RETENTION_MS asks "
            f"{spec.retention_ms}"
        )
    return problems, warnings
