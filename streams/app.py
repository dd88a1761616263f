"""The faust application: built from :class:`Settings`, never at import time.

One agent for now: alerts topic -> alert store. It runs ``at_least_once`` (faust's exactly_once has
open duplicate and fencing bugs) and every step is idempotent, so a redelivered record changes nothing.
Per-event errors are handled inside the agent: an exception escaping an agent can skip that event's
offset on restart (faust issue #315).
"""

import logging
from typing import Any

import faust

from models.settings import Settings
from store.alerts import AlertStore
from store.db import async_engine
from streams.persist import InvalidRecord, decode_alert, store_alert

__all__ = ["broker_urls", "create_app"]

log = logging.getLogger(__name__)


def broker_urls(bootstrap: str) -> list[str]:
    """faust's broker URLs from a comma-separated bootstrap list."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def create_app(settings: Settings, **overrides: Any) -> faust.App:
    """Build the stream application; ``overrides`` are extra faust settings (tests use them)."""
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.topic_partitions,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # A killed worker releases its partitions after 10 s instead of faust's 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        **overrides,
    )
    alerts_topic = app.topic(
        settings.alerts_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    store = AlertStore(async_engine(settings.sqlalchemy_url()))

    @app.agent(alerts_topic, name="persist-alerts")
    async def persist_alerts(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                record = decode_alert(event.value)
            except InvalidRecord as exc:
                log.error(
                    "skipping poison record at %s[%d]@%d: %s",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                    exc.reason,
                )
                continue
            await store_alert(store, record)

    return app
