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
the role (the guarantee would silently be weaker, or faust's co-partitioned tables wrong). So is a
``max.message.bytes`` below the largest record batch sevflow writes to the topic
(models/record_limits.py): those records would be refused at every attempt. More
partitions than configured and another ``retention.ms`` are warnings: the topic still keeps what
sevflow needs, and operators change retention with ``kafka-configs`` on purpose. Pure: the broker
side is kafka_admin/topics.py.

The ``SEVFLOW_TOPIC_*`` settings hold for every topic; ``SEVFLOW_TOPIC_OVERRIDES`` changes them for
one topic (:func:`parse_topic_overrides`), in Kafka's own config names, e.g. a longer retention for
``incident-events``, which analytics replays::

    incident-events:retention.ms=-1;sevflow-alerts:retention.ms=604800000,min.insync.replicas=2

A spec remembers which of its values came from an override, so that a mismatch names the setting
to change.
"""

from dataclasses import dataclass, field, replace

__all__ = [
    "BROKER_DEFAULT",
    "OVERRIDES_SETTING",
    "TopicOverride",
    "TopicSpec",
    "TopicState",
    "mismatches",
    "parse_topic_overrides",
]

#: Kafka's "the broker's default.replication.factor" in a CreateTopics request (KIP-464).
BROKER_DEFAULT = -1

OVERRIDES_SETTING = "SEVFLOW_TOPIC_OVERRIDES"
#: The configs an override sets (Kafka's names) → the setting that holds them for every topic.
_GLOBAL_SETTINGS = {
    "replication.factor": "SEVFLOW_TOPIC_REPLICATION_FACTOR",
    "min.insync.replicas": "SEVFLOW_TOPIC_MIN_INSYNC_REPLICAS",
    "retention.ms": "SEVFLOW_TOPIC_RETENTION_MS",
}


@dataclass(frozen=True)
class TopicOverride:
    """One topic's values in ``SEVFLOW_TOPIC_OVERRIDES``; None: the ``SEVFLOW_TOPIC_*`` one."""

    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    retention_ms: int | None = None

    def keys(self) -> frozenset[str]:
        """The Kafka config names this override sets."""
        given = zip(
            _GLOBAL_SETTINGS,
            (self.replication_factor, self.min_insync_replicas, self.retention_ms),
            strict=True,
        )
        return frozenset(key for key, value in given if value is not None)


def parse_topic_overrides(text: str) -> dict[str, TopicOverride]:
    """``<topic>:<config>=<value>,…;<topic>:…`` → topic → its override.

    Raises ValueError naming the part that is wrong (an unknown config, a value Kafka would refuse
    or that would lose data at once, a topic or config given twice)."""
    overrides: dict[str, TopicOverride] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        topic, colon, configs = (s.strip() for s in part.partition(":"))
        if not colon or not topic:
            raise ValueError(f"{part!r} is not <topic>:<config>=<value>,… (e.g. {_EXAMPLE})")
        if topic in overrides:
            raise ValueError(f"topic {topic} given twice")
        overrides[topic] = _parse_configs(topic, configs)
    return overrides


_EXAMPLE = "incident-events:retention.ms=-1"


def _parse_configs(topic: str, text: str) -> TopicOverride:
    values: dict[str, int] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, equals, raw = (s.strip() for s in item.partition("="))
        if key not in _GLOBAL_SETTINGS:
            raise ValueError(f"topic {topic}: {key!r} is not one of {', '.join(_GLOBAL_SETTINGS)}")
        if not equals:
            raise ValueError(f"topic {topic}: {item!r} is not <config>=<value>")
        if key in values:
            raise ValueError(f"topic {topic}: {key} given twice")
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"topic {topic}: {key}={raw}: not a whole number") from None
        if problem := _value_problem(key, value):
            raise ValueError(f"topic {topic}: {key}={raw}: {problem}")
        values[key] = value
    if not values:
        raise ValueError(f"topic {topic}: no config given (e.g. {_EXAMPLE})")
    rf, insync = values.get("replication.factor"), values.get("min.insync.replicas")
    if rf is not None and rf > 0 and insync is not None and insync > rf:
        raise ValueError(
            f"topic {topic}: min.insync.replicas={insync} is more than its replication.factor={rf}: "
            "no write could be accepted"
        )
    return TopicOverride(rf, insync, values.get("retention.ms"))


def _value_problem(key: str, value: int) -> str | None:
    if key == "replication.factor" and (value == 0 or value < BROKER_DEFAULT):
        return "give 1 or more, or -1 for the cluster's default"
    if key == "min.insync.replicas" and value < 1:
        return "give 1 or more"
    if key == "retention.ms" and (value == 0 or value < -1):
        # 0 would delete every record at the next log cleanup: never what an operator means.
        return "give -1 (keep for ever) or milliseconds above 0"
    return None


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
    #: The largest record batch sevflow writes to it (models/record_limits.py); None: small ones.
    record_bytes: int | None = None
    #: The configs (Kafka's names) whose value came from ``SEVFLOW_TOPIC_OVERRIDES``.
    overridden: frozenset[str] = field(default=frozenset(), compare=False)

    def overridden_by(self, override: TopicOverride | None) -> "TopicSpec":
        """This spec with the values ``override`` sets."""
        if override is None:
            return self
        return replace(
            self,
            replication_factor=(
                self.replication_factor
                if override.replication_factor is None
                else override.replication_factor
            ),
            min_insync_replicas=_given(override.min_insync_replicas, self.min_insync_replicas),
            retention_ms=_given(override.retention_ms, self.retention_ms),
            overridden=self.overridden | override.keys(),
        )

    def setting(self, key: str) -> str:
        """The setting that gives this topic's ``key`` (a Kafka config name), to name in errors."""
        if key in self.overridden:
            return f"{OVERRIDES_SETTING} {self.name}:{key}"
        return _GLOBAL_SETTINGS[key]

    def resolved(self, broker_default_rf: int) -> "TopicSpec":
        """This spec with the replication factor and ``min.insync.replicas`` as numbers, given the
        cluster's ``default.replication.factor``."""
        rf = broker_default_rf if self.replication_factor == BROKER_DEFAULT else self.replication_factor
        insync = self.min_insync_replicas
        if insync is None and rf >= 2:
            insync = rf - 1
        return replace(self, replication_factor=rf, min_insync_replicas=insync)

    def configs(self, broker_max_message_bytes: int | None = None) -> dict[str, str]:
        """The topic configs sevflow sets at creation (the rest are the broker's): also
        ``max.message.bytes`` when the broker's default would refuse its largest records."""
        configs = {}
        if (
            self.record_bytes is not None
            and broker_max_message_bytes is not None
            and broker_max_message_bytes < self.record_bytes
        ):
            configs["max.message.bytes"] = str(self.record_bytes)
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
                f"brokers, the cluster has {brokers} (set {self.setting('replication.factor')})"
            )
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            return (
                f"topic {self.name}: min.insync.replicas {self.min_insync_replicas} is more than "
                f"its replication factor {self.replication_factor}: no write could be accepted "
                f"(set {self.setting('min.insync.replicas')})"
            )
        return None


def _given(value: int | None, otherwise: int | None) -> int | None:
    return otherwise if value is None else value


@dataclass(frozen=True)
class TopicState:
    """An existing topic as the cluster describes it."""

    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int
    #: ``max.message.bytes``: the topic's own, or the broker's ``message.max.bytes`` (Kafka's
    #: default 1048588); None when the broker does not report it (not checked then).
    max_message_bytes: int | None = 1_048_588


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
            f"{spec.replication_factor} ({spec.setting('replication.factor')}; reassign its "
            "partitions with kafka-reassign-partitions)"
        )
    expected_insync = spec.min_insync_replicas if spec.min_insync_replicas is not None else 1
    if state.min_insync_replicas != expected_insync:
        problems.append(
            f"topic {name} has min.insync.replicas {state.min_insync_replicas}, sevflow expects "
            f"{expected_insync} ({spec.setting('min.insync.replicas')}; change it with "
            "kafka-configs --alter)"
        )
    limit = state.max_message_bytes
    if spec.record_bytes is not None and limit is not None and limit < spec.record_bytes:
        problems.append(
            f"topic {name} takes record batches of at most {limit} bytes "
            f"(max.message.bytes), sevflow writes up to {spec.record_bytes} to it: they would be "
            f"refused at every attempt (raise it with kafka-configs --alter --add-config "
            f"max.message.bytes={spec.record_bytes})"
        )
    if spec.retention_ms is not None and state.retention_ms != spec.retention_ms:
        warnings.append(
            f"topic {name} has retention.ms {state.retention_ms}, {spec.setting('retention.ms')} "
            f"asks {spec.retention_ms}"
        )
    return problems, warnings
