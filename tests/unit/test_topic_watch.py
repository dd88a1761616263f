"""The sinks' watch on their topic: a topic seen in the consumer's metadata and then absent for
the grace period raises TopicGone; one never seen yet, or back in time, does not."""

import pytest

from sinks.kafka import TopicGone, TopicWatch


class _Metadata:
    """The two calls the watch makes on aiokafka's consumer (its subscription and its cached
    cluster metadata), as the consumer answers them."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.partitions: set[int] | None = None

    def subscription(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == self.topic else None


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _watch(metadata: _Metadata, clock: _Clock) -> TopicWatch:
    return TopicWatch(metadata, grace=3.0, clock=clock)  # type: ignore[arg-type]


def test_a_topic_gone_for_the_grace_period_raises_with_its_name() -> None:
    metadata, clock = _Metadata("incident-events"), _Clock()
    watch = _watch(metadata, clock)
    metadata.partitions = {0, 1}
    watch.check()
    metadata.partitions = None
    watch.check()
    clock.now += 2.9
    watch.check()
    clock.now += 0.1
    with pytest.raises(TopicGone, match="topic incident-events no longer exists"):
        watch.check()


def test_a_topic_not_yet_in_the_metadata_is_not_gone() -> None:
    metadata, clock = _Metadata("incident-events"), _Clock()
    watch = _watch(metadata, clock)
    for _ in range(10):
        watch.check()
        clock.now += 5


def test_a_topic_back_within_the_grace_period_starts_the_count_again() -> None:
    metadata, clock = _Metadata("incident-events"), _Clock()
    watch = _watch(metadata, clock)
    metadata.partitions = {0}
    watch.check()
    metadata.partitions = None
    watch.check()
    clock.now += 2
    metadata.partitions = {0}
    watch.check()
    metadata.partitions = None
    clock.now += 2
    watch.check()  # absent 0 s by the new count
    clock.now += 2
    watch.check()  # 2 s
    clock.now += 1
    with pytest.raises(TopicGone):
        watch.check()
