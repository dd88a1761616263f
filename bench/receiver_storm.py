"""An alert storm from a real Alertmanager: sevflow against a bare JSON-parsing handler.

    .venv/bin/python -m bench.receiver_storm [--groups 3000] [--alerts-per-group 5]

Pushes ``groups`` x ``alerts-per-group`` alerts through Alertmanager's own API (``POST
/api/v2/alerts``, one group per ``alertname``) and times, from the moment the first group is due
(push start + ``group_wait``), until Alertmanager's own counters
(``alertmanager_notification_requests_total`` minus ``..._failed_total``, webhook integration)
count every group as delivered; it also prints Alertmanager's mean
``alertmanager_notification_latency_seconds`` and the CPU time per alert of the webhook's server
and of Alertmanager over the storm (from /proc; the seconds move with the neighbours' load). The
same storm runs against ``sevflow receiver`` (acks=all to the local broker) and against
:mod:`bench.receiver_bare` (parses the JSON, answers 200), each with a fresh Alertmanager, in the
same run. Afterwards it checks nothing was lost: every alert in the topic exactly once for sevflow,
every alert counted by the bare handler. Prints figures; asserts nothing.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline_workers import cpu_seconds
from testkit.harness import Alertmanager, Sevflow, metric_sum, read_topic, wait_for
from testkit.kafka_io import topics_swept
from testkit.local import REPO, free_port
from testkit.local_http import local_get


def storm_alerts(groups: int, per_group: int) -> list[dict[str, object]]:
    starts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        {
            "labels": {"alertname": f"Storm{g}", "instance": f"host-{i}:9100", "job": "node"},
            "annotations": {"summary": f"storm group {g} alert {i}"},
            "startsAt": starts,
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
        }
        for g in range(groups)
        for i in range(per_group)
    ]


def delivered(alertmanager: Alertmanager) -> float:
    """Notifications Alertmanager completed successfully, from its per-request counters, which it
    bumps after each webhook request (``alertmanager_notifications_total`` counts notifications as
    they start, so it runs ahead of delivery)."""
    exposition = local_get(f"{alertmanager.url}/metrics", timeout=10).text
    total = metric_sum(exposition, "alertmanager_notification_requests_total", integration="webhook")
    failed = metric_sum(
        exposition, "alertmanager_notification_requests_failed_total", integration="webhook"
    )
    return total - failed


def run_storm(
    workdir: Path,
    webhook_url: str,
    token: str,
    groups: int,
    per_group: int,
    group_wait: float,
    server: int,
) -> dict[str, float]:
    """Push the storm, then time from the moment the first group is due until all are delivered.

    ``group_wait`` is longer than the push takes, so every group is complete when Alertmanager
    flushes it (with a short one, a group flushed mid-push would send only part of its alerts).
    ``server``: the process id of the webhook's server, whose CPU time (and Alertmanager's) over
    the storm is counted: on the shared box it moves far less than the seconds.
    """
    alertmanager = Alertmanager(
        workdir, webhook_url, token=token, group_wait=f"{group_wait:.0f}s", group_interval="5m"
    )
    alertmanager.start()
    try:
        alerts = storm_alerts(groups, per_group)
        assert alertmanager.process is not None
        pids = [server, alertmanager.process.pid]
        cpu = [cpu_seconds([pid]) for pid in pids]
        started = time.perf_counter()
        for i in range(0, len(alerts), 1000):
            alertmanager.post_alerts(alerts[i : i + 1000])
        pushed = time.perf_counter() - started
        if pushed >= group_wait:
            print(f"    warning: the push took {pushed:.1f}s >= group_wait", file=sys.stderr)
        wait_for(lambda: delivered(alertmanager) >= groups, 600, "every group delivered", interval=0.05)
        elapsed = time.perf_counter() - started - group_wait
        server_cpu, alertmanager_cpu = (cpu_seconds([pid]) - c for pid, c in zip(pids, cpu, strict=True))
        exposition = local_get(f"{alertmanager.url}/metrics", timeout=10).text
        latency_sum = metric_sum(
            exposition, "alertmanager_notification_latency_seconds_sum", integration="webhook"
        )
        latency_count = metric_sum(
            exposition, "alertmanager_notification_latency_seconds_count", integration="webhook"
        )
        return {
            "seconds": elapsed,
            "push_seconds": pushed,
            "failed_attempts": metric_sum(
                exposition, "alertmanager_notification_requests_failed_total", integration="webhook"
            ),
            "latency_ms": 1000 * latency_sum / max(latency_count, 1),
            "server_us_per_alert": 1e6 * server_cpu / len(alerts),
            "alertmanager_us_per_alert": 1e6 * alertmanager_cpu / len(alerts),
        }
    finally:
        alertmanager.stop()


def storm_bare(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, float], int]:
    """The storm against the bare handler: its figures and how many alerts it received."""
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "bench.receiver_bare", str(port)], cwd=REPO)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/count"), 30, "bare handler")
        result = run_storm(
            tmp / "bare",
            f"http://127.0.0.1:{port}/",
            "unused",
            args.groups,
            args.alerts_per_group,
            args.group_wait,
            bare.pid,
        )
        alerts: int = local_get(f"http://127.0.0.1:{port}/count").json()["alerts"]
    finally:
        bare.terminate()
        bare.wait(20)
    return result, alerts


def storm_sevflow(args: argparse.Namespace, tmp: Path, total: int) -> tuple[dict[str, float], list[Any]]:
    """The storm against sevflow's receiver: its figures and the records in the alerts topic."""
    workdir = tmp / "sevflow"
    workdir.mkdir()
    sevflow = Sevflow(
        workdir,
        args.bootstrap,
        f"sqlite:///{tmp}/unused.db",
        command="receiver",
        extra_env={
            "SEVFLOW_LOG_LEVEL": "WARNING",
            **{
                f"SEVFLOW_{k.upper()}": v
                for k, _, v in (x.partition("=") for x in args.receiver_setting)
            },
        },
    )
    sevflow.start()
    assert sevflow.process is not None
    try:
        sevflow_result = run_storm(
            workdir,
            f"{sevflow.url}/webhooks/alertmanager",
            sevflow.token,
            args.groups,
            args.alerts_per_group,
            args.group_wait,
            sevflow.process.pid,
        )
        records = read_topic(args.bootstrap, sevflow.alerts_topic, expect=total, settle=3, timeout=120)
    finally:
        sevflow.stop()
    return sevflow_result, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--alerts-per-group", type=int, default=5)
    parser.add_argument(
        "--receiver-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra SEVFLOW_* setting for the receiver, e.g. MAX_CONCURRENT_PUBLISHES=256",
    )
    parser.add_argument("--group-wait", type=float, default=15, help="seconds; longer than the push")
    parser.add_argument("--bootstrap", default=os.environ.get("SEVFLOW_TEST_KAFKA", "127.0.0.1:19092"))
    args = parser.parse_args()
    total = args.groups * args.alerts_per_group
    print(
        f"Alertmanager storm: {args.groups} groups x {args.alerts_per_group} alerts = {total} alerts, "
        f"{os.cpu_count()} cores shared by Alertmanager, receiver and broker"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with topics_swept(args.bootstrap), tempfile.TemporaryDirectory() as tmp:
        bare_result, bare_alerts = storm_bare(args, Path(tmp))
        sevflow_result, records = storm_sevflow(args, Path(tmp), total)
    copies = Counter(r.key for r in records)
    duplicated = sum(1 for c in copies.values() if c > 1)
    for name, result, delivered in (
        ("bare handler", bare_result, f"alerts received {bare_alerts}/{total}"),
        (
            "sevflow",
            sevflow_result,
            f"alerts in topic {len(records)}/{total}, distinct {len(copies)}, duplicated {duplicated}",
        ),
    ):
        print(
            f"{name + ':':<13} every group delivered in {result['seconds']:6.2f}s "
            f"(push {result['push_seconds']:.2f}s, mean notification latency "
            f"{result['latency_ms']:.1f} ms), "
            f"failed attempts {result['failed_attempts']:.0f}, {delivered}; CPU per alert: "
            f"server {result['server_us_per_alert']:.0f} µs, Alertmanager "
            f"{result['alertmanager_us_per_alert']:.0f} µs"
        )
    ratio = sevflow_result["seconds"] / bare_result["seconds"]
    latency = sevflow_result["latency_ms"] / max(bare_result["latency_ms"], 1e-9)
    print(
        f"ratio sevflow/bare: every group delivered {ratio:.2f} (issue #17's target <= 1.5), "
        f"mean notification latency {latency:.2f} (target <= 3), server CPU per alert "
        f"{sevflow_result['server_us_per_alert'] / max(bare_result['server_us_per_alert'], 1e-9):.2f}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (other work on the box skews the figures)")


def _answers(url: str) -> bool:
    try:
        return local_get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
