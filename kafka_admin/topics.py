"""Create sevflow's topics as :class:`models.topics.TopicSpec` says, and check those that exist.

:func:`ensure_topics` resolves the cluster's ``default.replication.factor``, refuses a spec the
cluster cannot hold (replication factor above its broker count), creates the missing topics with
their replication factor, ``min.insync.replicas`` and ``retention.ms`` (and ``max.message.bytes``
where the broker's default is below the records sevflow writes to them), then describes every topic
back and raises :class:`TopicSettingsError` naming each mismatch (warnings are logged). Errors:
:class:`TopicSettingsError` (permanent: a setting or the cluster must change; the role stops) and
aiokafka's ``KafkaError`` / ``OSError`` / ``TimeoutError`` (transient: Kafka unreachable, retry).
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from models.topics import TopicSpec, TopicState, mismatches

__all__ = ["CONSUMER_METADATA_MAX_AGE_MS", "TopicSettingsError", "ensure_topic", "ensure_topics"]

log = logging.getLogger(__name__)

#: How often a consumer group member of sevflow's (the worker's, each sink's) asks for its topics'
#: metadata even when nothing changed (one small Metadata request). A member that joined while the
#: broker was away again found its topics missing and got an empty assignment, which lasted until
#: the next refresh: 5 minutes by default, its alerts waiting (tests/integration/
#: test_worker_broker_flap.py). A refresh finds the topics and the group rebalances.
CONSUMER_METADATA_MAX_AGE_MS = 10_000

#: Seconds between two descriptions of a topic whose metadata is not there yet.
DESCRIBE_INTERVAL = 0.1


class TopicSettingsError(Exception):
    """The topics cannot be what the settings ask (each problem named): not worth retrying."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


async def ensure_topics(
    bootstrap: str, specs: Sequence[TopicSpec], wait_seconds: float = 10.0
) -> list[str]:
    """Create the missing topics of ``specs`` and check every one; the warnings (also logged)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_seconds * 1000))
    try:  # closed on every path: a start that timed out leaked the client's connections
        await asyncio.wait_for(admin.start(), wait_seconds)
        return await _ensure(admin, specs, wait_seconds)
    finally:
        await admin.close()


async def ensure_topic(
    bootstrap: str, topic: str | TopicSpec, partitions: int = 1, wait_seconds: float = 10.0
) -> None:
    """:func:`ensure_topics` for one topic; a bare name is created with ``partitions`` and the
    cluster's defaults."""
    spec = topic if isinstance(topic, TopicSpec) else TopicSpec(topic, partitions)
    await ensure_topics(bootstrap, [spec], wait_seconds)


async def _ensure(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec], wait_seconds: float
) -> list[str]:
    cluster = await admin.describe_cluster()
    brokers = cluster["brokers"]
    broker = await _broker_configs(admin, brokers[0]["node_id"])
    default_rf = int(_named(broker, brokers[0]["node_id"], "default.replication.factor"))
    # (a Kafka-compatible broker may not report it: then nothing is set at creation)
    max_message_bytes = _number(broker.get("message.max.bytes"))
    resolved = [spec.resolved(default_rf) for spec in specs]
    if problems := [p for spec in resolved if (p := spec.problem(len(brokers)))]:
        raise TopicSettingsError(problems)
    existing = set(await admin.list_topics())
    for spec in resolved:
        if spec.name in existing:
            continue
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        spec.partitions,
                        spec.replication_factor,
                        topic_configs=spec.configs(max_message_bytes),
                    )
                ]
            )
            log.info(
                "created topic %s: %d partitions, replication factor %d%s",
                spec.name,
                spec.partitions,
                spec.replication_factor,
                "".join(f", {k}={v}" for k, v in spec.configs(max_message_bytes).items()),
            )
        except TopicAlreadyExistsError:
            pass  # another role created it meanwhile: checked below like any other
    states = await _describe(admin, [spec.name for spec in resolved], wait_seconds)
    problems, warnings = [], []
    for spec in resolved:
        found, warned = mismatches(spec, states[spec.name])
        problems += found
        warnings += warned
    for warning in warnings:
        log.warning("%s", warning)
    if problems:
        raise TopicSettingsError(problems)
    return warnings


async def _broker_configs(admin: AIOKafkaAdminClient, broker: int) -> dict[str, str]:
    response = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker))])
    return {
        str(entry["config_names"]): str(entry["config_value"])
        for resource in response[0].to_object()["resources"]
        for entry in resource["config_entries"]
    }


def _number(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _named(configs: dict[str, str], broker: int, name: str) -> str:
    if name not in configs:
        raise TopicSettingsError([f"broker {broker} does not report {name}"])
    return configs[name]


async def _describe(
    admin: AIOKafkaAdminClient, names: Sequence[str], wait_seconds: float = 10.0
) -> dict[str, TopicState]:
    """Partitions, replication factor, min.insync.replicas, retention.ms and max.message.bytes of
    each topic.

    A topic just created may be described with no partitions (or not at all) until its metadata
    reached the broker that answers: asked again every :data:`DESCRIBE_INTERVAL` seconds, for
    ``wait_seconds`` at most."""
    deadline = time.monotonic() + wait_seconds
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(list(names))
        partitions = {t["topic"]: t["partitions"] for t in described if not t["error_code"]}
        configs: dict[str, dict[str, str]] = {}
        response = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        for part in response:
            for resource in part.to_object()["resources"]:
                if not resource["error_code"]:
                    configs[resource["resource_name"]] = {
                        e["config_names"]: e["config_value"] for e in resource["config_entries"]
                    }
        missing = [n for n in names if not partitions.get(n) or n not in configs]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not described within {wait_seconds:.0f}s: {missing}")
        await asyncio.sleep(DESCRIBE_INTERVAL)
    return {
        name: TopicState(
            name=name,
            partitions=len(partitions[name]),
            replication_factor=min(len(p["replicas"]) for p in partitions[name]),
            min_insync_replicas=int(configs[name]["min.insync.replicas"]),
            retention_ms=int(configs[name]["retention.ms"]),
            max_message_bytes=_number(configs[name].get("max.message.bytes")),
        )
        for name in names
    }
