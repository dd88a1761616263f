"""The receiver's Prometheus metrics, on a registry of its own (one per app, so tests start fresh).

Names follow the playbook's queries on sevflow itself:
``sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))`` and
``histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le))``.
Under ``sevflow run`` the receiver also exports its sibling roles, from the supervisor's status
file: ``sevflow_role_up{role}`` and ``sevflow_role_restarts_total{role}`` (alert on
``sevflow_role_up == 0`` or ``increase(sevflow_role_restarts_total[15m]) > 0``).
The ``path`` label is the route template, never the raw URL, so a scanner cannot explode the
number of series.
"""

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from models.supervision import loads

__all__ = ["CONTENT_TYPE_LATEST", "ReceiverMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ReceiverMetrics:
    """Counters and histograms of the HTTP receiver."""

    def __init__(self, roles_file: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if roles_file is not None:
            self.registry.register(RoleCollector(roles_file))
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route and status code.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to response, by method and route.",
            ["method", "path"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.alerts_received = Counter(
            "sevflow_alerts_received_total",
            "Alerts in webhook payloads that passed validation.",
            registry=self.registry,
        )
        self.alerts_produced = Counter(
            "sevflow_alerts_produced_total",
            "Alerts written to Kafka and acknowledged (acks=all).",
            registry=self.registry,
        )
        self.alerts_deduplicated = Counter(
            "sevflow_alerts_deduplicated_total",
            "Alerts of a retried payload already in Kafka from the refused attempt, not rewritten.",
            registry=self.registry,
        )
        self.alerts_refused = Counter(
            "sevflow_alerts_refused_total",
            "Alerts answered 503 because Kafka did not acknowledge them in time.",
            registry=self.registry,
        )
        self.produce_duration = Histogram(
            "sevflow_kafka_produce_duration_seconds",
            "Time from handing a payload's records to Kafka until all are acknowledged (or not).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class RoleCollector(Collector):
    """``sevflow_role_up`` and ``sevflow_role_restarts_total`` from the status file of the
    ``sevflow run`` that started this receiver (read at each scrape). Nothing when the file is
    missing, unreadable or another supervisor's (a stale file of an earlier run, a receiver run
    on its own): no series rather than stale ones."""

    def __init__(self, roles_file: Path) -> None:
        self.roles_file = roles_file

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the series depend on the file: never checked at registration

    def collect(self) -> Iterator[Metric]:
        try:
            supervisor, roles = loads(self.roles_file.read_text())
        except (OSError, ValueError):
            return
        if supervisor != os.getppid():
            return
        up = GaugeMetricFamily(
            "sevflow_role_up", "1 while the role's process runs under sevflow run.", labels=["role"]
        )
        restarts = CounterMetricFamily(
            "sevflow_role_restarts",
            "Times sevflow run started the role again after it exited.",
            labels=["role"],
        )
        for role in roles:
            up.add_metric([role.role], 1.0 if role.state == "up" else 0.0)
            restarts.add_metric([role.role], float(role.restarts))
        yield up
        yield restarts
