"""Kafka's topic ids: what tells a topic from another of the same name created after it.

Offsets restart at 0 in a topic deleted and created again, so a position stored for the old topic
says nothing about the new one (the worker's check, streams/source_topics.py). Kafka names each
topic's incarnation with a UUID, returned by Metadata requests from version 10 on. aiokafka asks
for version 5 at most, so version 12 (Kafka 3 and later; sevflow runs on Kafka 4) is declared
here with aiokafka's own protocol types and sent through its client.
"""

import uuid
from collections.abc import Sequence
from io import BytesIO

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import IncompatibleBrokerVersion, for_code
from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

__all__ = ["ask_topic_ids", "topic_ids"]

#: Kafka's UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist (now).
_UNKNOWN_TOPIC = 3


class _Uuid(AbstractType[bytes]):  # type: ignore[misc]  # (aiokafka has no stubs)
    """Kafka's UUID: 16 bytes as they are."""

    @classmethod
    def encode(cls, value: bytes) -> bytes:
        return value

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        return data.read(16)


_BROKERS = CompactArray(
    ("node_id", Int32),
    ("host", CompactString("utf-8")),
    ("port", Int32),
    ("rack", CompactString("utf-8")),
    ("tags", TaggedFields),
)
_PARTITIONS = CompactArray(
    ("error_code", Int16),
    ("partition_index", Int32),
    ("leader_id", Int32),
    ("leader_epoch", Int32),
    ("replica_nodes", CompactArray(Int32)),
    ("isr_nodes", CompactArray(Int32)),
    ("offline_replicas", CompactArray(Int32)),
    ("tags", TaggedFields),
)
_TOPIC = (
    ("error_code", Int16),
    ("name", CompactString("utf-8")),
    ("topic_id", _Uuid),
    ("is_internal", Boolean),
    ("partitions", _PARTITIONS),
    ("topic_authorized_operations", Int32),
    ("tags", TaggedFields),
)


class _MetadataResponseV12(Response):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 12
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", _BROKERS),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        ("topics", CompactArray(*_TOPIC)),
        ("tags", TaggedFields),
    )


_REQUESTED = CompactArray(("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields))


class _MetadataRequestV12(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 12
    RESPONSE_TYPE = _MetadataResponseV12
    SCHEMA = Schema(
        ("topics", _REQUESTED),
        ("allow_auto_topic_creation", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdsRequest(Request[_MetadataRequestV12]):  # type: ignore[misc]
    """Metadata of named topics, never creating one (a broker may auto-create on metadata)."""

    API_KEY = 3

    def __init__(self, names: Sequence[str]) -> None:
        self._topics: list[tuple[bytes, str, dict[int, bytes]]] = [(bytes(16), n, {}) for n in names]

    def build(self, request_struct_class: type[_MetadataRequestV12]) -> _MetadataRequestV12:
        return request_struct_class(self._topics, False, False, {})


async def topic_ids(bootstrap: str, names: Sequence[str], wait_seconds: float = 10.0) -> dict[str, str]:
    """The id (a UUID's text) of each topic of ``names`` that exists; a topic missing from the
    answer does not exist. Raises aiokafka's errors when Kafka cannot answer, and
    ``IncompatibleBrokerVersion`` from a broker without Metadata version 12 (an old one)."""
    timeout_ms = int(wait_seconds * 1000)
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await client.bootstrap()
        return await ask_topic_ids(client, names)
    finally:
        await client.close()


async def ask_topic_ids(client: AIOKafkaClient, names: Sequence[str]) -> dict[str, str]:
    """:func:`topic_ids` through a ``client`` already bootstrapped, for a caller that asks again
    and again (the sinks' watch of their topic, sinks/incarnation.py)."""
    try:
        response = await client.send(client.get_random_node(), _TopicIdsRequest(names))
    except NotImplementedError:  # (aiokafka's word for a broker whose versions all miss v12)
        raise IncompatibleBrokerVersion("the broker does not answer Metadata version 12") from None
    found: dict[str, str] = {}
    for error_code, name, topic_id, *_ in response.topics:
        if error_code == _UNKNOWN_TOPIC:
            continue
        if error_code:
            raise for_code(error_code)(f"metadata of topic {name}")
        found[name] = str(uuid.UUID(bytes=topic_id))
    return found
