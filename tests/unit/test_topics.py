"""The durability spec of sevflow's topics and the mismatches named at start (models/topics.py)."""

import re

import pytest
from pydantic import ValidationError

from models.event_size import EVENT_MAX_BYTES
from models.record_limits import ALERT_BATCH_BYTES, DEAD_LETTER_MAX_BYTES, EVENT_RECORD_BYTES
from models.settings import Settings
from models.topics import (
    BROKER_DEFAULT,
    TopicOverride,
    TopicSpec,
    TopicState,
    mismatches,
    parse_topic_overrides,
)


def test_defaults_follow_the_cluster_and_ask_all_but_one_replica() -> None:
    spec = Settings().topic_spec("sevflow-commands")
    assert spec == TopicSpec("sevflow-commands", 8, BROKER_DEFAULT, None, None)
    assert spec.resolved(broker_default_rf=3) == TopicSpec("sevflow-commands", 8, 3, 2, None)
    assert spec.resolved(broker_default_rf=2).min_insync_replicas == 1
    # The single-node development broker: one replica, nothing more to ask.
    assert spec.resolved(broker_default_rf=1) == TopicSpec("sevflow-commands", 8, 1, None, None)
    assert spec.resolved(1).configs() == {}
    assert spec.resolved(1).configs(broker_max_message_bytes=1000) == {}


def test_explicit_settings_win_and_become_topic_configs() -> None:
    settings = Settings(
        topic_replication_factor=5, topic_min_insync_replicas=3, topic_retention_ms=86_400_000
    )
    spec = settings.topic_spec("events").resolved(broker_default_rf=1)
    assert (spec.replication_factor, spec.min_insync_replicas) == (5, 3)
    assert spec.configs() == {"min.insync.replicas": "3", "retention.ms": "86400000"}


def test_a_spec_the_cluster_cannot_hold_is_named() -> None:
    assert TopicSpec("a", 1, 3).resolved(1).problem(brokers=3) is None
    assert TopicSpec("a", 1, 3).resolved(1).problem(brokers=1) == (
        "topic a: replication factor 3 needs as many brokers, the cluster has 1 "
        "(set SEVFLOW_TOPIC_REPLICATION_FACTOR)"
    )
    problem = TopicSpec("a", 1, 2, 3).problem(brokers=3)
    assert problem is not None
    assert "min.insync.replicas 3 is more than its replication factor 2" in problem


def test_an_existing_topic_matching_its_spec_passes() -> None:
    spec = TopicSpec("alerts", 8, 3, 2, 604_800_000)
    assert mismatches(spec, TopicState("alerts", 8, 3, 2, 604_800_000)) == ([], [])
    # No retention asked: the topic's own is fine.
    assert mismatches(TopicSpec("alerts", 8, 1), TopicState("alerts", 8, 1, 1, 1)) == ([], [])


def test_weaker_durability_or_fewer_partitions_stop_the_role() -> None:
    spec = TopicSpec("alerts", 8, 3, 2)
    problems, warnings = mismatches(spec, TopicState("alerts", 4, 1, 1, 604_800_000))
    assert problems == [
        "topic alerts has 4 partitions, SEVFLOW_TOPIC_PARTITIONS asks 8 (add partitions with "
        "kafka-topics --alter, or lower the setting)",
        "topic alerts has replication factor 1, sevflow expects 3 "
        "(SEVFLOW_TOPIC_REPLICATION_FACTOR; reassign its partitions with kafka-reassign-partitions)",
        "topic alerts has min.insync.replicas 1, sevflow expects 2 "
        "(SEVFLOW_TOPIC_MIN_INSYNC_REPLICAS; change it with kafka-configs --alter)",
    ]
    assert warnings == []


def test_more_partitions_or_another_retention_are_warnings() -> None:
    spec = TopicSpec("alerts", 8, 1, None, 3_600_000)
    problems, warnings = mismatches(spec, TopicState("alerts", 12, 1, 1, 7_200_000))
    assert problems == []
    assert warnings == [
        "topic alerts has 12 partitions, SEVFLOW_TOPIC_PARTITIONS asks 8",
        "topic alerts has retention.ms 7200000, SEVFLOW_TOPIC_RETENTION_MS asks 3600000",
    ]


def test_zero_replicas_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="0 replicas"):
        Settings(topic_replication_factor=0)


# Per-topic overrides: SEVFLOW_TOPIC_OVERRIDES="<topic>:<config>=<value>,…;<topic>:…" with Kafka's
# own config names, over the SEVFLOW_TOPIC_* values every other topic keeps.


def test_an_override_applies_to_its_topic_only() -> None:
    settings = Settings(
        topic_replication_factor=3,
        topic_retention_ms=86_400_000,
        topic_overrides="incident-events:retention.ms=-1; sevflow-alerts:min.insync.replicas=1,"
        "replication.factor=2",
    )
    events = settings.topic_spec("incident-events")
    assert (events.replication_factor, events.min_insync_replicas, events.retention_ms) == (3, None, -1)
    alerts = settings.topic_spec("sevflow-alerts")
    assert (alerts.replication_factor, alerts.min_insync_replicas, alerts.retention_ms) == (
        2,
        1,
        86_400_000,
    )
    assert settings.topic_spec("sevflow-commands") == TopicSpec(
        "sevflow-commands", 8, 3, None, 86_400_000
    )
    assert events.resolved(1).configs() == {"min.insync.replicas": "2", "retention.ms": "-1"}


def test_no_override_is_no_change() -> None:
    assert Settings(topic_overrides="").topic_spec("sevflow-alerts") == Settings().topic_spec(
        "sevflow-alerts"
    )
    assert parse_topic_overrides(" ; ") == {}


def test_overrides_parse_kafkas_names() -> None:
    assert parse_topic_overrides(
        "a:retention.ms=604800000,min.insync.replicas=2;b:replication.factor=-1"
    ) == {
        "a": TopicOverride(min_insync_replicas=2, retention_ms=604_800_000),
        "b": TopicOverride(replication_factor=-1),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("incident-events", "'incident-events' is not <topic>:<config>=<value>"),
        (":retention.ms=1", "':retention.ms=1' is not <topic>:<config>=<value>"),
        ("a:", "topic a: no config given"),
        (
            "a:retention=1",
            "topic a: 'retention' is not one of replication.factor, min.insync.replicas, retention.ms",
        ),
        ("a:retention.ms", "topic a: 'retention.ms' is not <config>=<value>"),
        ("a:retention.ms=7d", "topic a: retention.ms=7d: not a whole number"),
        ("a:retention.ms=0", "topic a: retention.ms=0: give -1 (keep for ever) or milliseconds above 0"),
        (
            "a:replication.factor=0",
            "topic a: replication.factor=0: give 1 or more, or -1 for the cluster's default",
        ),
        ("a:min.insync.replicas=0", "topic a: min.insync.replicas=0: give 1 or more"),
        ("a:retention.ms=1,retention.ms=2", "topic a: retention.ms given twice"),
        ("a:retention.ms=1;a:min.insync.replicas=1", "topic a given twice"),
        (
            "a:replication.factor=2,min.insync.replicas=3",
            "topic a: min.insync.replicas=3 is more than its replication.factor=2",
        ),
    ],
)
def test_a_bad_override_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_topic_overrides(text)
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(topic_overrides=text)


def test_an_override_of_a_topic_sevflow_does_not_create_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(topic_overrides="incident-event:retention.ms=-1")
    assert (
        "SEVFLOW_TOPIC_OVERRIDES names incident-event, not one of sevflow's topics "
        "(sevflow-alerts, sevflow-commands, incident-events, incident-events-dlq, sevflow-probe-results)"
    ) in str(raised.value)
    # A renamed topic is overridden by its configured name.
    Settings(events_topic="prod-events", topic_overrides="prod-events:retention.ms=-1")


def test_mismatches_of_an_overridden_topic_name_the_override() -> None:
    settings = Settings(
        topic_overrides="incident-events:min.insync.replicas=2,retention.ms=-1,replication.factor=3"
    )
    spec = settings.topic_spec("incident-events").resolved(broker_default_rf=1)
    problems, warnings = mismatches(spec, TopicState("incident-events", 8, 1, 1, 604_800_000))
    assert problems == [
        "topic incident-events has replication factor 1, sevflow expects 3 "
        "(SEVFLOW_TOPIC_OVERRIDES incident-events:replication.factor; reassign its partitions "
        "with kafka-reassign-partitions)",
        "topic incident-events has min.insync.replicas 1, sevflow expects 2 "
        "(SEVFLOW_TOPIC_OVERRIDES incident-events:min.insync.replicas; change it with "
        "kafka-configs --alter)",
    ]
    assert warnings == [
        "topic incident-events has retention.ms 604800000, SEVFLOW_TOPIC_OVERRIDES "
        "incident-events:retention.ms asks -1"
    ]
    assert spec.problem(brokers=1) == (
        "topic incident-events: replication factor 3 needs as many brokers, the cluster has 1 "
        "(set SEVFLOW_TOPIC_OVERRIDES incident-events:replication.factor)"
    )


def test_the_topics_of_large_records_must_take_them() -> None:
    """A topic whose max.message.bytes is below the largest record batch sevflow writes to it
    refused that batch at every attempt: the relay paused for ever on one large event, the sinks
    role stopped at every start on one large dead letter. Now the role stops at start, naming the
    setting; a topic sevflow creates is created to take them when the broker's default is lower."""
    settings = Settings()
    events = settings.topic_spec(settings.events_topic)
    assert events.record_bytes == EVENT_RECORD_BYTES
    assert events.record_bytes > EVENT_MAX_BYTES
    assert settings.topic_spec(settings.sinks_dlq_topic).record_bytes == DEAD_LETTER_MAX_BYTES + 1024
    assert settings.topic_spec(settings.alerts_topic).record_bytes == ALERT_BATCH_BYTES + 1024
    assert settings.topic_spec(settings.commands_topic).record_bytes is None
    resolved = events.resolved(1)
    # Kafka's default (1048588) takes them: nothing set at creation, nothing named.
    assert resolved.configs(broker_max_message_bytes=1_048_588) == {}
    state = TopicState(settings.events_topic, 8, 1, 1, 604_800_000)
    assert mismatches(resolved, state) == ([], [])
    assert resolved.configs(broker_max_message_bytes=100_000) == {
        "max.message.bytes": str(EVENT_RECORD_BYTES)
    }
    small = TopicState(settings.events_topic, 8, 1, 1, 604_800_000, max_message_bytes=500_000)
    problems, warnings = mismatches(resolved, small)
    assert problems == [
        f"topic incident-events takes record batches of at most 500000 bytes (max.message.bytes), "
        f"sevflow writes up to {EVENT_RECORD_BYTES} to it: they would be refused at every attempt "
        f"(raise it with kafka-configs --alter --add-config max.message.bytes={EVENT_RECORD_BYTES})"
    ]
    assert warnings == []
    exact = TopicState(settings.events_topic, 8, 1, 1, 1, max_message_bytes=EVENT_RECORD_BYTES)
    assert mismatches(resolved, exact)[0] == []
    # A Kafka-compatible broker that does not report the limit: nothing to check, nothing set.
    unknown = TopicState(settings.events_topic, 8, 1, 1, 1, max_message_bytes=None)
    assert mismatches(resolved, unknown) == ([], [])
    assert resolved.configs(broker_max_message_bytes=None) == {}
