"""Every sevflow topic is created through one helper, kafka_admin/topics.py: it resolves the
cluster's replication factor, applies the SEVFLOW_TOPIC_* settings and checks an existing topic
against them. A topic created another way (the admin client directly, faust declaring one)
would skip those checks."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["models", "store", "kafka_admin", "analytics", "streams", "sinks", "receiver", "sevflow"]
#: Ways to create a topic without kafka_admin.topics.ensure_topics.
CREATING = re.compile(r"\bcreate_topics\(|\bNewTopic\(|\bmaybe_declare\(|\bdeclare\(\)")


def test_only_kafka_admin_creates_topics() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if path.parent.name != "kafka_admin"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if CREATING.search(line)
    ]
    assert offenders == []
