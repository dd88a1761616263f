"""The Metadata request kafka_admin/topic_ids.py declares: version 12 when the broker takes it,
and aiokafka's NotImplementedError for a broker without it, which topic_ids turns into
IncompatibleBrokerVersion (the worker then goes on without the check, streams/source_topics.py)."""

import pytest

from kafka_admin.topic_ids import _TopicIdsRequest


def test_version_12_is_asked_of_a_broker_that_takes_it() -> None:
    request = _TopicIdsRequest(["alerts", "commands"]).prepare({3: (0, 13)})
    assert (request.API_KEY, request.API_VERSION, request.FLEXIBLE_VERSION) == (3, 12, True)
    assert [name for _, name, _ in request.topics] == ["alerts", "commands"]
    assert (request.allow_auto_topic_creation, request.include_topic_authorized_operations) == (
        False,
        False,
    )
    assert request.encode()[:1] == bytes([3])  # a compact array of two topics: length + 1


def test_a_broker_without_version_12_is_refused_before_asking() -> None:
    with pytest.raises(NotImplementedError):
        _TopicIdsRequest(["alerts"]).prepare({3: (0, 11)})
