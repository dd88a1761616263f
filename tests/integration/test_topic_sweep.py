"""The topic sweep that keeps the tests' broker from piling up topics run after run."""

import asyncio
import uuid

import pytest

from kafka_admin.topics import ensure_topic
from testkit.kafka_io import delete_topics, topic_names, topics_swept

pytestmark = pytest.mark.integration


def test_sweep_deletes_only_what_appeared_inside(kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    kept, swept = f"sweep-kept-{tag}", f"sweep-gone-{tag}"
    asyncio.run(ensure_topic(kafka_bootstrap, kept, 1))
    try:
        with topics_swept(kafka_bootstrap):
            asyncio.run(ensure_topic(kafka_bootstrap, swept, 2))
            assert swept in asyncio.run(topic_names(kafka_bootstrap))
        names = asyncio.run(topic_names(kafka_bootstrap))
        assert swept not in names
        assert kept in names
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, {kept}))
