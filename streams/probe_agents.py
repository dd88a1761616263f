"""The worker's verification probes (models/verification.py, streams/probes.py), wired into the
faust app by :func:`install`:

* timer ``verify`` (only when probes are configured): every ``SEVFLOW_VERIFY_INTERVAL_SECONDS``,
  probe the incidents in their quiet period whose probe-results partition this worker is assigned
  (streams/probes.py) and publish each result to that partition;
* agent ``probe-results``: apply each result to its incident
  (:meth:`streams.pipeline.Pipeline.process_probe_result`), in the topic's order; a replay
  changes nothing (results are applied once, by id).

Per-event errors stay inside the agent (faust issue #315): a result that does not decode, or that
the store refuses for good, is quarantined like a poison alert or command (streams/quarantine.py,
``SEVFLOW_PROBE_RESULTS_QUARANTINE_TOPIC``, counted against the same poison limit); a transient
database error is retried until it passes.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import faust
import httpx
import mode
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from models.quarantine import SourcePosition
from models.verification import ProbeResult
from streams.failures import RETRIED, reason_of, retry_transient
from streams.probes import ProbeRunner, partition_of
from streams.quarantine import TooMuchPoison
from streams.records import decode_probe_result

if TYPE_CHECKING:
    from streams.steps import WorkerSteps

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(
    app: faust.App,
    steps: "WorkerSteps",
    assignment: Callable[[], set[tuple[str, int]]],
    on_poison_limit: Callable[[TooMuchPoison], None],
) -> None:
    """Add the probe-results agent and, when the pipeline has probes, the probe timer to
    ``app``; ``assignment()``: the (topic, partition) pairs this worker consumes now."""
    settings = steps.settings
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
            await steps.refuse(event, decoded)
            return
        try:
            applied = await retry_transient(
                f"probe result {result.result_id}",
                partial(steps.pipeline.process_probe_result, result),
            )
        except RETRIED as exc:  # (retry_transient raises only the permanent ones)
            message = event.message
            where = SourcePosition(
                topic=message.topic, partition=message.partition, offset=message.offset
            )
            await steps.quarantine.put(where, event.key, event.value, type(exc).__name__, reason_of(exc))
            return
        steps.quarantine.applied()
        if applied.events:
            steps.relay.wake()
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
            try:
                await apply(event)
            except TooMuchPoison as exc:
                on_poison_limit(exc)
                return

    probes = steps.pipeline.probes
    if not probes:
        return
    client = httpx.AsyncClient(follow_redirects=False)

    def partition(incident_id: str) -> int:
        count = app.consumer.topic_partitions(topic.get_topic_name()) or settings.topic_partitions
        return partition_of(incident_id.encode(), count)

    def owns(incident_id: str) -> bool:
        return (settings.probe_results_topic, partition(incident_id)) in assignment()

    async def publish(result: ProbeResult) -> None:
        key = result.incident_id.encode()
        sent = await topic.send(
            key=key, value=result.to_bytes(), partition=partition(result.incident_id)
        )
        await sent  # Kafka's acknowledgement

    runner = ProbeRunner(
        steps.pipeline.store,
        probes,
        publish,
        steps.clock,
        client,
        settings.verify_timeout_seconds,
        owns=owns,
    )

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
