"""Topics created with the durability settings and described back from the real broker; existing
topics that differ from the settings are named. The test broker has one node, so replication
factor 1 is all it can hold; asking 3 must say so."""

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kafka_admin.topics import TopicSettingsError, _describe, ensure_topics
from models.record_limits import EVENT_RECORD_BYTES
from models.settings import Settings
from models.topics import TopicSpec, TopicState

pytestmark = pytest.mark.integration


def _name(what: str) -> str:
    return f"settings-{what}-{uuid.uuid4().hex[:8]}"


async def _described(bootstrap: str, name: str) -> TopicState:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return (await _describe(admin, [name]))[name]
    finally:
        await admin.close()


async def _create_raw(bootstrap: str, name: str, partitions: int, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()


def test_topics_are_created_with_the_settings_and_checked_again(kafka_bootstrap: str) -> None:
    name = _name("created")
    spec = TopicSpec(name, 3, replication_factor=-1, min_insync_replicas=1, retention_ms=3_600_000)
    assert asyncio.run(ensure_topics(kafka_bootstrap, [spec])) == []
    assert asyncio.run(_described(kafka_bootstrap, name)) == TopicState(name, 3, 1, 1, 3_600_000)
    # A second start finds the topic as asked.
    assert asyncio.run(ensure_topics(kafka_bootstrap, [spec])) == []


def test_replication_beyond_the_cluster_is_a_clear_error(kafka_bootstrap: str) -> None:
    name = _name("rf3")
    with pytest.raises(TopicSettingsError) as raised:
        asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(name, 1, replication_factor=3)]))
    assert str(raised.value) == (
        f"topic {name}: replication factor 3 needs as many brokers, the cluster has 1 "
        "(set SEVFLOW_TOPIC_REPLICATION_FACTOR)"
    )


def test_an_existing_topic_that_differs_is_named(kafka_bootstrap: str) -> None:
    name = _name("differs")
    asyncio.run(
        _create_raw(kafka_bootstrap, name, 2, {"min.insync.replicas": "2", "retention.ms": "7200000"})
    )
    with pytest.raises(TopicSettingsError) as raised:
        asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(name, 4, retention_ms=3_600_000)]))
    assert raised.value.problems == [
        f"topic {name} has 2 partitions, SEVFLOW_TOPIC_PARTITIONS asks 4 (add partitions with "
        "kafka-topics --alter, or lower the setting)",
        f"topic {name} has min.insync.replicas 2, sevflow expects 1 "
        "(SEVFLOW_TOPIC_MIN_INSYNC_REPLICAS; change it with kafka-configs --alter)",
    ]


def test_another_retention_is_a_warning(kafka_bootstrap: str) -> None:
    name = _name("retention")
    asyncio.run(_create_raw(kafka_bootstrap, name, 2, {"retention.ms": "7200000"}))
    warnings = asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(name, 2, retention_ms=1)]))
    assert warnings == [f"topic {name} has retention.ms 7200000, SEVFLOW_TOPIC_RETENTION_MS asks 1"]


def test_a_per_topic_retention_override_is_created_and_read_back(kafka_bootstrap: str) -> None:
    """SEVFLOW_TOPIC_OVERRIDES gives one topic its own retention; the others keep the global one."""
    events, alerts = _name("events"), _name("alerts")
    settings = Settings(
        events_topic=events,
        alerts_topic=alerts,
        topic_partitions=2,
        topic_retention_ms=3_600_000,
        topic_overrides=f"{events}:retention.ms=-1,min.insync.replicas=1",
    )
    specs = [settings.topic_spec(events), settings.topic_spec(alerts)]
    assert asyncio.run(ensure_topics(kafka_bootstrap, specs)) == []
    assert asyncio.run(_described(kafka_bootstrap, events)) == TopicState(events, 2, 1, 1, -1)
    assert asyncio.run(_described(kafka_bootstrap, alerts)) == TopicState(alerts, 2, 1, 1, 3_600_000)
    # Checked again at the next start; a changed override is named as the override.
    assert asyncio.run(ensure_topics(kafka_bootstrap, specs)) == []
    changed = Settings(
        events_topic=events, topic_partitions=2, topic_overrides=f"{events}:retention.ms=86400000"
    )
    warnings = asyncio.run(ensure_topics(kafka_bootstrap, [changed.topic_spec(events)]))
    assert warnings == [
        f"topic {events} has retention.ms -1, SEVFLOW_TOPIC_OVERRIDES {events}:retention.ms asks "
        "86400000"
    ]


def test_an_events_topic_too_small_for_an_event_stops_the_role_at_start(kafka_bootstrap: str) -> None:
    """The relay's largest event (models/event_size.py) on a topic whose max.message.bytes is
    below it was refused at every round: no event was published again. The start now says so."""
    events = _name("events-small")
    asyncio.run(_create_raw(kafka_bootstrap, events, 2, {"max.message.bytes": "100000"}))
    spec = Settings(events_topic=events, topic_partitions=2).topic_spec(events)
    with pytest.raises(TopicSettingsError) as raised:
        asyncio.run(ensure_topics(kafka_bootstrap, [spec]))
    assert raised.value.problems == [
        f"topic {events} takes record batches of at most 100000 bytes (max.message.bytes), "
        f"sevflow writes up to {EVENT_RECORD_BYTES} to it: they would be refused at every attempt "
        f"(raise it with kafka-configs --alter --add-config max.message.bytes={EVENT_RECORD_BYTES})"
    ]
    assert asyncio.run(_described(kafka_bootstrap, events)).max_message_bytes == 100_000
