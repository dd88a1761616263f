"""The verification probe runner: checks the probe of every incident in its quiet period and
publishes each result as a record (models/verification.py).

The runner decides nothing: it asks the service (``GET`` its health URL: 2xx passes) or
Prometheus (``/api/v1/query`` of the PromQL expression: a non-empty result whose every sample is
non-zero passes; an empty result, as a comparison that filters everything out, fails) and puts
what it found on the probe-results topic. The worker applies those records like commands
(:meth:`streams.pipeline.Pipeline.process_probe_result`), so the decision comes from records and
a replay reaches the same one. Every request has a timeout; any error of the probe's own request
(refused, timed out, a 5xx, an answer that is not Prometheus') is a failed result naming it.

**One runner per incident.** Every worker runs the runner, but a worker probes only the incidents
whose key (the incident id) maps to a partition of the probe-results topic it is assigned now
(:func:`partition_of`, Kafka's default partitioner; the result is published to that partition),
so one result per interval is taken for each incident, by the worker that also applies it. While
partitions move between workers (a rebalance) a run may probe nobody's or, for a moment, the same
incident twice: two results of one moment are two records, each applied once, in order.

**Fairly.** A run looks at a page of at most :data:`streams.quiet_scan.PAGE_LIMIT` quiet
incidents, continuing after the previous run's page (streams/quiet_scan.py): incidents whose
probe keeps failing cannot hold the others back.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.partitioner import murmur2

from models.clock import Clock
from models.incident import Incident
from models.probe_file import ProbeFileError, parse_probe_file
from models.text_files import TextFileError, read_text
from models.verification import Probe, ProbeResult, ProbeSet, parse_probes
from store.incidents import IncidentStore
from streams.quiet_scan import QuietScan

if TYPE_CHECKING:  # httpx is imported when a probe runs: a worker without probes never loads it
    import httpx

__all__ = ["ProbeRunner", "check", "load_probes", "partition_of"]

#: ``quiet_incidents`` lists the incidents quiet since before a time: all of them, here.
_EVER = datetime(9999, 1, 1, tzinfo=UTC)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's and aiokafka's) sends ``key`` to:
    murmur2 of the key, made positive, modulo the topic's partition count."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def _everyone(incident_id: str) -> bool:
    return True


def load_probes(text: str, file: Path | None, rules_file: Path | None = None) -> ProbeSet:
    """The probes of ``SEVFLOW_VERIFY_PROBES``, of ``SEVFLOW_VERIFY_FILE`` and of the rules
    file's ``probes``, in that order; a bad one (named with its file and line), or two probes
    with the same matchers, fails at start."""
    sourced = [(p, "SEVFLOW_VERIFY_PROBES") for p in parse_probes(text).probes()]
    for path, key in ((file, None), (rules_file, "probes")):
        if path is not None:
            try:
                text = read_text(path)
            except TextFileError as exc:
                raise ProbeFileError(str(exc)) from None
            origin = str(path) if key is None else f"{path} ({key})"
            sourced.extend((p, origin) for p in parse_probe_file(text, str(path), key=key))
    first: dict[str, str] = {}
    for probe, origin in sourced:
        if probe.selector in first:
            raise ProbeFileError(
                f"{origin}: a second probe for {probe.selector} (the first is in "
                f"{first[probe.selector]})"
            )
        first[probe.selector] = origin
    return ProbeSet(p for p, _ in sourced)


async def _http(client: "httpx.AsyncClient", url: str, wait_seconds: float) -> tuple[bool, str]:
    import httpx

    try:
        response = await client.get(url, timeout=wait_seconds)
    except httpx.HTTPError as exc:
        return False, f"failed: {type(exc).__name__}{f': {exc}' if str(exc) else ''}"
    if 200 <= response.status_code < 300:
        return True, f"answered {response.status_code}"
    return False, f"answered {response.status_code}"


def _truthy(sample: object) -> bool:
    """A Prometheus sample ``[time, "value"]`` whose value is a non-zero number."""
    if not isinstance(sample, list) or len(sample) != 2:
        return False
    try:
        value = float(sample[1])
    except (TypeError, ValueError, OverflowError):  # (an integer of 400 digits overflows)
        return False
    return value != 0 and not math.isnan(value)


async def _promql(
    client: "httpx.AsyncClient", prometheus_url: str, expression: str, wait_seconds: float
) -> tuple[bool, str]:
    import httpx

    url = prometheus_url.rstrip("/") + "/api/v1/query"
    try:
        response = await client.get(url, params={"query": expression}, timeout=wait_seconds)
        document = response.json()
    except (httpx.HTTPError, ValueError, RecursionError) as exc:
        # (a proxy's page that is not UTF-8, a number of over 4,300 digits, JSON nested past
        # the stack: each raised through the worker's timer and stopped the worker)
        return False, f"Prometheus failed: {type(exc).__name__}{f': {exc}' if str(exc) else ''}"
    if response.status_code != 200 or not isinstance(document, dict):
        error = document.get("error") if isinstance(document, dict) else None
        return False, f"Prometheus answered {response.status_code}{f': {error}' if error else ''}"
    data = document.get("data") or {}
    if not isinstance(data, dict):
        return False, "answered without a data object"
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        samples = [result]
    elif kind == "vector" and isinstance(result, list):
        samples = [series.get("value") for series in result if isinstance(series, dict)]
    else:
        return False, f"returned a {kind}, not a vector or scalar"
    if not samples:
        return False, "returned no series"
    if not all(_truthy(s) for s in samples):
        return False, "returned a zero value"
    return True, f"returned {len(samples)} truthy value{'s' if len(samples) != 1 else ''}"


async def check(client: "httpx.AsyncClient", probe: Probe, wait_seconds: float) -> tuple[bool, str]:
    """Run every check of ``probe``: ``(passed, what was found)``, naming the check that failed."""
    found = []
    if probe.http_url is not None:
        ok, detail = await _http(client, probe.http_url, wait_seconds)
        if not ok:
            return False, f"GET {probe.http_url} {detail}"
        found.append(f"GET {probe.http_url} {detail}")
    if probe.promql is not None and probe.prometheus_url is not None:
        ok, detail = await _promql(client, probe.prometheus_url, probe.promql, wait_seconds)
        if not ok:
            return False, f"PromQL {probe.promql} {detail}"
        found.append(f"PromQL {probe.promql} {detail}")
    return True, "; ".join(found)


class ProbeRunner:
    """One run probes every quiet incident that has a probe and publishes the results."""

    def __init__(
        self,
        store: IncidentStore,
        probes: ProbeSet,
        publish: Callable[[ProbeResult], Awaitable[None]],
        clock: Clock,
        client: "httpx.AsyncClient",
        timeout: float,
        *,
        owns: Callable[[str], bool] = _everyone,
        scan: QuietScan | None = None,
    ) -> None:
        """``owns(incident_id)``: whether this worker probes that incident now (the partition
        its results go to is assigned to it); ``scan``: the pages of quiet incidents to look at."""
        self._owns = owns
        self._scan = scan if scan is not None else QuietScan()
        self._store = store
        self._probes = probes
        self._publish = publish
        self._clock = clock
        self._client = client
        self._timeout = timeout

    async def _one(self, incident: Incident, probe: Probe) -> ProbeResult:
        checked_at = self._clock()
        try:
            ok, detail = await check(self._client, probe, self._timeout)
        except Exception as exc:  # noqa: BLE001 (a check that cannot read an answer fails)
            # What a service or Prometheus answers is not sevflow's to trust: an answer no check
            # foresaw fails the probe (the incident stays open) instead of stopping the worker,
            # whose next tick would probe it again.
            ok, detail = False, f"the check could not read the answer: {type(exc).__name__}"
        result = ProbeResult.of(
            incident.id, incident.flaps, probe.name, ok, detail, checked_at, incident.quiet_since
        )
        await self._publish(result)
        return result

    async def run_once(self) -> list[ProbeResult]:
        """Probe this worker's incidents of the next page in their quiet period (all alerts
        resolved, not yet resolved) that have a probe, concurrently; the results published, in
        incident order."""
        if not self._probes:
            return []
        due: list[tuple[Incident, Probe]] = []
        for incident_id in await self._scan.page(self._store, _EVER):
            if not self._owns(incident_id):
                continue
            incident = await self._store.get(incident_id)
            if incident is None or not incident.is_open or incident.quiet_since is None:
                continue
            if (probe := self._probes.for_incident(incident)) is not None:
                due.append((incident, probe))
        return list(await asyncio.gather(*(self._one(i, p) for i, p in due)))
