"""Kafka's topic ids (kafka_admin/topic_ids.py) from the real broker: stable for a topic, new for
a topic deleted and created again under its name, absent for a topic that does not exist."""

import asyncio
import uuid

import pytest

from kafka_admin.topic_ids import topic_ids
from kafka_admin.topics import ensure_topics
from models.topics import TopicSpec
from testkit.kafka_io import delete_topics

pytestmark = pytest.mark.integration


async def test_a_topic_created_again_has_another_id(kafka_bootstrap: str) -> None:
    name, missing = f"test-ids-{uuid.uuid4().hex[:8]}", f"test-ids-none-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 2)])
    try:
        first = await topic_ids(kafka_bootstrap, [name, missing])
        assert list(first) == [name]
        assert uuid.UUID(first[name]).int != 0
        assert await topic_ids(kafka_bootstrap, [name]) == first
        await delete_topics(kafka_bootstrap, {name})
        for _ in range(100):  # (deletion ends in the background)
            if name not in await topic_ids(kafka_bootstrap, [name]):
                break
            await asyncio.sleep(0.1)
        assert await topic_ids(kafka_bootstrap, [name]) == {}
        await ensure_topics(kafka_bootstrap, [TopicSpec(name, 2)])
        again = await topic_ids(kafka_bootstrap, [name])
        assert list(again) == [name]
        assert again[name] != first[name]
    finally:
        await delete_topics(kafka_bootstrap, {name})
