"""The receiver's Prometheus metrics, on a registry of its own (one per app, so tests start fresh).

Names follow the playbook's queries on sevflow itself:
``sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))`` and
``histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le))``.
The ``path`` label is the route template, never the raw URL, so a scanner cannot explode the
number of series.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ReceiverMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ReceiverMetrics:
    """Counters and histograms of the HTTP receiver."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
