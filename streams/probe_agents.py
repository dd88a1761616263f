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

__all__ = ["ProbeAgents", "install", "run_probes"]

log = logging.getLogger(__name__)


def install(
    app: faust.App,
    steps: "WorkerSteps",
    assignment: Callable[[], set[tuple[str, int]]],
    on_poison_limit: Callable[[TooMuchPoison], None],
) -> None:
    """Add the probe-results agent and, when the pipeline has probes, the probe timer to
    ``app``; ``assignment()``: the (topic, partition) pairs this worker consumes now."""
    agents = ProbeAgents(app, steps, assignment, on_poison_limit)

    @app.agent(agents.topic, name="probe-results")
    async def probe_results(stream: faust.StreamT[bytes]) -> None:
        await agents.consume(stream)

    probes = steps.pipeline.probes
    if not probes:
        return
    import httpx  # (only with probes: streams/probes.py)

    client = httpx.AsyncClient(follow_redirects=False)
    runner = ProbeRunner(
        steps.pipeline.store,
        probes,
        agents.publish,
        steps.clock,
        client,
        steps.settings.verify_timeout_seconds,
        owns=agents.owns,
    )

    @app.service
    class _ProbeClient(mode.Service):
        """Closes the probes' HTTP client when the worker stops."""

        async def on_shutdown(self) -> None:
            await client.aclose()

    @app.timer(interval=steps.settings.verify_interval_seconds, name="verify")  # type: ignore[untyped-decorator]
    async def verify() -> None:
        await run_probes(runner)


class ProbeAgents:
    """What the probe-results agent and the verify timer do, one method per step: apply a
    result, consume the topic, place a result on its partition, publish it, run the probes."""

    def __init__(
        self,
        app: faust.App,
        steps: "WorkerSteps",
        assignment: Callable[[], set[tuple[str, int]]],
        on_poison_limit: Callable[[TooMuchPoison], None],
    ) -> None:
        self._app = app
        self._steps = steps
        self._settings = steps.settings
        self._assignment = assignment
        self._on_poison_limit = on_poison_limit
        self.topic = app.topic(
            self._settings.probe_results_topic,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self._settings.topic_partitions,
        )

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        """The agent: apply each result in the topic's order; stop at the poison limit."""
        async for event in stream.events():
            try:
                await self.apply(event)
            except TooMuchPoison as exc:
                self._on_poison_limit(exc)
                return

    async def apply(self, event: Any) -> None:
        """Apply one result to its incident; one that does not decode or that the store refuses
        for good is quarantined (a transient error is retried until it passes)."""
        steps = self._steps
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

    def partition(self, incident_id: str) -> int:
        """The probe-results partition of ``incident_id`` (the topic's count as Kafka has it)."""
        consumer = self._app.consumer
        count = consumer.topic_partitions(self.topic.get_topic_name()) or self._settings.topic_partitions
        return partition_of(incident_id.encode(), count)

    def owns(self, incident_id: str) -> bool:
        """Whether this worker consumes the partition of ``incident_id``'s results."""
        return (self._settings.probe_results_topic, self.partition(incident_id)) in self._assignment()

    async def publish(self, result: ProbeResult) -> None:
        """Send ``result`` to its incident's partition and wait for Kafka's acknowledgement."""
        key = result.incident_id.encode()
        sent = await self.topic.send(
            key=key, value=result.to_bytes(), partition=self.partition(result.incident_id)
        )
        await sent  # Kafka's acknowledgement


async def run_probes(runner: ProbeRunner) -> None:
    """The timer's tick: probe once; a store, network or Kafka failure waits for the next tick."""
    try:
        await runner.run_once()
    except (SQLAlchemyError, OSError, KafkaError) as exc:
        log.warning("verification probes not run: %s", reason_of(exc))
