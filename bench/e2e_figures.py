"""What bench/e2e_latency.py measures besides latency: when each alert reached a topic, the
median time of each hop, the CPU time of each role of ``sevflow run``, the alerts processed."""

import os
import statistics
import time
from pathlib import Path
from typing import Any

from testkit.harness import Sevflow, metric_sum
from testkit.kafka_io import read_timed_json_topic
from testkit.local_http import local_get

__all__ = [
    "alert_bench_id",
    "cpu_report",
    "cpu_seconds",
    "hops",
    "opened_bench_id",
    "processed",
    "record_times",
]


async def record_times(bootstrap: str, topic: str, bench_id: Any) -> dict[str, float]:
    """bench id → the Kafka timestamp (producer's wall clock, as monotonic time) of the first record
    of ``topic`` that ``bench_id(value)`` names."""
    offset = time.time() - time.monotonic()
    found: dict[str, float] = {}
    for timestamp, value in await read_timed_json_topic(bootstrap, topic, idle_polls=3):
        name = bench_id(value)
        if name is not None and name not in found:
            found[name] = timestamp - offset
    return found


def alert_bench_id(value: dict[str, Any]) -> str | None:
    return value.get("labels", {}).get("bench_id")  # type: ignore[no-any-return]


def opened_bench_id(value: dict[str, Any]) -> str | None:
    if value.get("type") != "opened":
        return None
    return ((value.get("alert") or {}).get("labels") or {}).get("bench_id")  # type: ignore[no-any-return]


def hops(posted: dict[str, float], *stages: tuple[str, dict[str, float]]) -> str:
    """Median time of each hop, over the alerts seen at every stage."""
    names = [name for name, _ in stages]
    times = [t for _, t in stages]
    ids = [i for i in posted if all(i in t for t in times)]
    if not ids:
        return "no samples"
    parts, before = [], posted
    for name, after in zip(names, times, strict=True):
        parts.append(f"{name} {statistics.median(after[i] - before[i] for i in ids) * 1000:.1f} ms")
        before = after
    return ", ".join(parts)


def cpu_seconds(sevflow: Sevflow) -> dict[str, float]:
    """CPU time used so far by each role of ``sevflow run`` (its child processes), from /proc."""
    assert sevflow.process is not None
    parent = sevflow.process.pid
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    used: dict[str, float] = {}
    for pid in children:
        role = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2].decode()
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        used[role] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def cpu_report(before: dict[str, float], after: dict[str, float], alerts: int) -> str:
    used = {role: after[role] - before.get(role, 0) for role in sorted(after)}
    return "  ".join(f"{role} {s:.1f}s ({s / alerts * 1e6:.0f} µs/alert)" for role, s in used.items())


def processed(sevflow: Sevflow) -> float:
    text = local_get(f"http://127.0.0.1:{sevflow.worker_metrics_port}/metrics").text
    return metric_sum(text, "sevflow_worker_alerts_processed_total")
