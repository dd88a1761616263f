"""The worker's verification probes (models/verification.py, streams/probes.py), wired into the
faust app by :func:`install`:

* timer ``verify`` (only when probes are configured): every ``SEVFLOW_VERIFY_INTERVAL_SECONDS``,
  probe the incidents in their quiet period and publish each result on the probe-results topic;
* agent ``probe-results``: apply each result to its incident
  (:meth:`streams.pipeline.Pipeline.process_probe_result`), in the topic's order; a replay
  changes nothing (results are applied once, by id).

Per-event errors stay inside the agent (faust issue #315): a result that does not decode is
logged and skipped (it can never apply), a transient database error is retried until it passes.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import faust
import httpx
import mode
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from models.clock import Clock
from models.settings import Settings
from models.verification import ProbeResult
from streams.failures import RETRIED, reason_of, retry_transient
from streams.pipeline import Pipeline
from streams.probes import ProbeRunner
from streams.records import decode_probe_result

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(
    app: faust.App, pipeline: Pipeline, settings: Settings, clock: Clock, on_applied: Callable[[], None]
) -> None:
    """Add the probe-results agent and, when ``pipeline`` has probes, the probe timer to ``app``;
    ``on_applied`` is called after a result changed an incident (the relay's wake-up)."""
    topic = app.topic(
        settings.probe_results_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )

    async def apply(event: Any) -> None:
        decoded = decode_probe_result(event.value)
        result = decoded.record
        if result is None:
            log.warning(
                "probe result %s[%s]@%s skipped: %s",
                event.message.topic,
                event.message.partition,
                event.message.offset,
                decoded.refused,
            )
            return
        try:
            applied = await retry_transient(
                f"probe result {result.result_id}", partial(pipeline.process_probe_result, result)
            )
        except RETRIED as exc:  # (retry_transient raises only the permanent ones)
            log.error("probe result %s not applied: %s", result.result_id, reason_of(exc))
            return
        if applied.events:
            on_applied()
        log.info(
            "probe result %s %s %s: %s",
            result.incident_id,
            result.probe,
            "passed" if result.ok else f"failed ({result.detail})",
            applied.reason,
        )

    @app.agent(topic, name="probe-results")
    async def probe_results(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await apply(event)

    probes = pipeline.probes
    if not probes:
        return
    client = httpx.AsyncClient(follow_redirects=False)

    async def publish(result: ProbeResult) -> None:
        sent = await topic.send(key=result.incident_id.encode(), value=result.to_bytes())
        await sent  # Kafka's acknowledgement

    runner = ProbeRunner(pipeline.store, probes, publish, clock, client, settings.verify_timeout_seconds)

    @app.service
    class _ProbeClient(mode.Service):
        """Closes the probes' HTTP client when the worker stops."""

        async def on_shutdown(self) -> None:
            await client.aclose()

    @app.timer(interval=settings.verify_interval_seconds, name="verify")  # type: ignore[untyped-decorator]
    async def verify() -> None:
        try:
            await runner.run_once()
        except (SQLAlchemyError, OSError, KafkaError) as exc:
            log.warning("verification probes not run: %s", reason_of(exc))
