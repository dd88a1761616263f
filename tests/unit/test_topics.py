"""The durability spec of sevflow's topics and the mismatches named at start (models/topics.py)."""

from models.settings import Settings
from models.topics import BROKER_DEFAULT, TopicSpec, TopicState, mismatches


def test_defaults_follow_the_cluster_and_ask_all_but_one_replica() -> None:
    spec = Settings().topic_spec("sevflow-alerts")
    assert spec == TopicSpec("sevflow-alerts", 8, BROKER_DEFAULT, None, None)
    assert spec.resolved(broker_default_rf=3) == TopicSpec("sevflow-alerts", 8, 3, 2, None)
    assert spec.resolved(broker_default_rf=2).min_insync_replicas == 1
    # The single-node development broker: one replica, nothing more to ask.
    assert spec.resolved(broker_default_rf=1) == TopicSpec("sevflow-alerts", 8, 1, None, None)
    assert spec.resolved(1).configs() == {}


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
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="0 replicas"):
        Settings(topic_replication_factor=0)
