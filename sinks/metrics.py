"""The sinks' Prometheus metrics, served on ``SEVFLOW_SINKS_METRICS_PORT``.

Read at scrape time from the sinks' own state (circuit breakers) and from a periodic measurement
of the dead-letter topic: ``sevflow_dlq_size`` counts dead letters whose event the sink has still
not delivered (a replayed and delivered letter no longer counts), so "DLQ not empty" clears once
the operator has fixed the cause and replayed.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models.settings import Settings
from sinks.base import Sink
from sinks.breaker import CircuitBreaker
from sinks.dlq import dlq_list_async
from sinks.notices import NoticeAnnouncer
from sinks.pagerduty import PagerDutySink
from store.deliveries import DeliveryLog

__all__ = ["SinkCollector", "undelivered_dead_letters"]


def _breaker(sink: Sink) -> CircuitBreaker | None:
    effects = getattr(sink, "_effects", None)  # the status sinks have no vendor, hence no breaker
    breaker = getattr(effects, "breaker", None)
    return breaker if isinstance(breaker, CircuitBreaker) else None


class SinkCollector(Collector):
    """sevflow_sink_circuit_open, sevflow_sink_failures_total, sevflow_sink_stopped,
    sevflow_dlq_size, sevflow_notices_failed_total (while Slack runs) and, while the canary runs
    (``canary_interval`` seconds), sevflow_canary_interval_seconds,
    sevflow_canary_watch_started_timestamp_seconds and (once one arrived)
    sevflow_canary_last_delivered_timestamp_seconds."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        dlq_topic: str,
        *,
        canary_interval: float = 0.0,
        started_at: datetime | None = None,
    ) -> None:
        self._sinks = sinks
        self._dlq_topic = dlq_topic
        self._canary_interval = canary_interval
        self._started_at = started_at
        self.dlq_size: int | None = None  # None until first measured
        #: Sinks that stopped themselves (too many dead letters in a row) while the others run.
        self.stopped: set[str] = set()
        #: The notices task, when Slack runs (its count of notices Slack refused for good).
        self.notices: NoticeAnnouncer | None = None

    def collect(self) -> Iterable[Metric]:
        circuit = GaugeMetricFamily(
            "sevflow_sink_circuit_open", "1 while the sink's circuit breaker is open.", labels=["sink"]
        )
        failures = CounterMetricFamily(
            "sevflow_sink_failures", "Retryable delivery failures of the sink.", labels=["sink"]
        )
        for sink in self._sinks:
            breaker = _breaker(sink)
            if breaker is not None:
                circuit.add_metric([sink.name], 1.0 if breaker.is_open else 0.0)
                failures.add_metric([sink.name], float(breaker.total_failures))
        stopped = GaugeMetricFamily(
            "sevflow_sink_stopped",
            "1 once the sink stopped itself (too many dead letters in a row) until the sinks restart.",
            labels=["sink"],
        )
        for sink in self._sinks:
            stopped.add_metric([sink.name], 1.0 if sink.name in self.stopped else 0.0)
        yield circuit
        yield failures
        yield stopped
        if self.dlq_size is not None:
            dlq = GaugeMetricFamily(
                "sevflow_dlq_size", "Dead letters whose event is still undelivered.", labels=["topic"]
            )
            dlq.add_metric([self._dlq_topic], float(self.dlq_size))
            yield dlq
        if self.notices is not None:
            failed = CounterMetricFamily(
                "sevflow_notices_failed",
                "Forced maintenance window notices Slack refused for good (marked failed).",
            )
            failed.add_metric([], float(self.notices.failed))
            yield failed
        yield from self._canary()

    def _canary(self) -> Iterable[Metric]:
        """What the SevflowCanaryStale rule compares: the last canary PagerDuty accepted, else
        since when these sinks have been waiting for one, against the interval."""
        pagerduty = next((s for s in self._sinks if isinstance(s, PagerDutySink)), None)
        if not self._canary_interval or pagerduty is None:
            return
        yield GaugeMetricFamily(
            "sevflow_canary_interval_seconds",
            "Seconds between two canary rounds (SEVFLOW_CANARY_INTERVAL_SECONDS).",
            value=self._canary_interval,
        )
        if self._started_at is not None:
            yield GaugeMetricFamily(
                "sevflow_canary_watch_started_timestamp_seconds",
                "When these sinks started waiting for canaries (their start), Unix time.",
                value=self._started_at.timestamp(),
            )
        if pagerduty.canary_delivered_at is not None:
            yield GaugeMetricFamily(
                "sevflow_canary_last_delivered_timestamp_seconds",
                "When PagerDuty last accepted (202) a canary's trigger from these sinks, Unix time.",
                value=pagerduty.canary_delivered_at.timestamp(),
            )


async def undelivered_dead_letters(settings: Settings, log: DeliveryLog) -> int:
    """Dead letters on the topic whose event the sink has not delivered since (e.g. by replay)."""
    letters = await dlq_list_async(settings, limit=1_000_000, wait_seconds=10)
    pending = 0
    by_sink: dict[str, list[str]] = {}
    for letter in letters:
        if letter.event_id is None:
            pending += 1  # undecodable: it stays until someone looks at it
        else:
            by_sink.setdefault(letter.sink, []).append(letter.event_id)
    for sink, event_ids in by_sink.items():
        delivered = await log.delivered(sink, event_ids)
        pending += sum(1 for e in event_ids if e not in delivered)
    return pending
