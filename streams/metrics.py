"""The stream worker's Prometheus metrics, served on ``SEVFLOW_WORKER_METRICS_PORT``.

Consumer lag is measured, not estimated: every few seconds the committed offsets of the worker's
consumer group are compared with the partitions' end offsets (what Kafka's own
``kafka-consumer-groups --describe`` shows). The outbox backlog is the number of stored events not
yet published on incident-events. An alert's delay is the part of a page's latency the worker
sees: from its receiver's stamp to the commit of the batch that applied it.
"""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from store.outbox import Outbox

__all__ = ["ALERT_DELAY_BUCKETS", "LagProbe", "WorkerMetrics"]

#: Seconds; from the tens of milliseconds of a page at a steady rate to a backlog's minutes.
ALERT_DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

log = logging.getLogger(__name__)


class WorkerMetrics:
    """Counters and gauges of one worker process, on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.alerts_processed = Counter(
            "sevflow_worker_alerts_processed_total",
            "Alert records applied to the incident store (after dedup and grouping).",
            registry=self.registry,
        )
        self.records_refused = Counter(
            "sevflow_worker_records_refused_total",
            "Alert records and commands the worker can never apply, by topic and reason: "
            "invalid (poison) or newer_schema (written by a newer release than this worker). "
            "Where each record was read is in the quarantine's log line, not in a label.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.alert_delay = Histogram(
            "sevflow_worker_alert_delay_seconds",
            "Seconds from the receiver accepting an alert (its received_at) to the worker "
            "committing the batch that applied it, on the worker's clock (a receiver's clock "
            "ahead of it reads as 0): the webhook-to-store part of a page's latency, and how far "
            "behind a backlog is.",
            buckets=ALERT_DELAY_BUCKETS,
            registry=self.registry,
        )
        self.events_created = Counter(
            "sevflow_incident_events_total",
            "Incident events created, by type.",
            ["type"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "sevflow_incident_events_published_total",
            "Incident events the outbox relay published on incident-events.",
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "sevflow_outbox_backlog",
            "Stored incident events not yet published on incident-events.",
            registry=self.registry,
        )
        self.heartbeat = Gauge(
            "sevflow_worker_heartbeat_timestamp_seconds",
            "Unix time of the worker's last metrics pass, run on its event loop: /metrics is "
            "served by another thread, so a stuck loop still answers scrapes, with this stale.",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "sevflow_consumer_lag",
            "Records behind the end of each partition, by consumer group, topic and partition.",
            ["group", "topic", "partition"],
            registry=self.registry,
        )

    async def measure_backlog(self, engine: AsyncEngine) -> None:
        self.outbox_backlog.set(await Outbox(engine).backlog())


class LagProbe:
    """Committed offsets of a consumer group against the end offsets of its topics."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], timeout: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._group = group
        self._topics = topics
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def measure(self) -> dict[TopicPartition, int]:
        """Lag per partition of the group's topics (a partition never committed counts from 0).

        After a failure the clients are closed and made anew on the next call: after a broker
        outage aiokafka's admin client could keep failing with "node which is not ready (node id
        None)" for good, and the lag (and the stall watch fed by it) froze."""
        try:
            return await self._measure()
        except BaseException:
            await self.close()
            raise

    async def _measure(self) -> dict[TopicPartition, int]:
        if self._admin is None or self._consumer is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, enable_auto_commit=False
            )
            await asyncio.wait_for(self._admin.start(), self._timeout)
            await asyncio.wait_for(self._consumer.start(), self._timeout)
        async with asyncio.timeout(self._timeout):
            described = await self._admin.describe_topics(self._topics)
            tps = [
                TopicPartition(d["topic"], p["partition"])
                for d in described
                if not d.get("error_code")
                for p in d["partitions"]
            ]
            committed = await self._admin.list_consumer_group_offsets(self._group)
            ends = await self._consumer.end_offsets(tps)
        lag = {}
        for tp in tps:
            position = committed.get(tp)
            offset = position.offset if position is not None and position.offset >= 0 else 0
            lag[tp] = max(0, ends[tp] - offset)
        return lag

    async def update(self, metrics: WorkerMetrics) -> dict[tuple[str, int], int]:
        """Measure, set the gauges, and return the lag by (topic, partition)."""
        lag = await self.measure()
        for tp, behind in lag.items():
            metrics.consumer_lag.labels(self._group, tp.topic, str(tp.partition)).set(behind)
        return {(tp.topic, tp.partition): behind for tp, behind in lag.items()}

    async def close(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._admin = self._consumer = None
        with contextlib.suppress(Exception):
            if consumer is not None:
                await consumer.stop()
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
