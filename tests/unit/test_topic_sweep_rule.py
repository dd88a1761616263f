"""Which topics the sweep after a test or benchmark run deletes (testkit/kafka_io.py)."""

from testkit.kafka_io import sweepable


def test_the_brokers_own_topics_are_never_swept() -> None:
    before = {"kept"}
    after = {"kept", "new-a", "__consumer_offsets", "__transaction_state", "new-b"}
    assert sweepable(before, after) == {"new-a", "new-b"}
