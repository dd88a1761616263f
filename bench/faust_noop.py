"""faust's own ceiling: an agent that takes the alert records in batches and does nothing else.

Run by bench/pipeline_bench.py between the raw aiokafka loop and the sevflow worker, over the same
records, with the worker's faust settings (at_least_once, asyncio's own loop) and its batches
(``streams.batching.worker_batches`` with the same batch size and windows). Whatever separates this
figure from the raw loop is faust's per-record machinery; whatever separates the worker from it
is sevflow's own work.

With ``worker`` as a fifth argument the agent runs in the worker's faust app class
(``streams.fetching.FetchingApp``: its consumer hands records over without faust's four tasks per
record, streams/handover.py), so the figure shows faust's ceiling as the worker meets it.

Usage (normally through pipeline_bench): python -m bench.faust_noop BOOTSTRAP TOPIC COUNT BATCH [worker]
Prints one line: records per second after the first batch, as pipeline_bench counts the worker's.
"""

import os
import sys
import tempfile
import time
import uuid
from typing import Any

import faust

from models.settings import Settings
from streams.batching import worker_batches
from streams.fetching import FetchingApp


def main() -> None:
    bootstrap, topic, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    defaults = Settings()
    app_class = FetchingApp if sys.argv[5:] == ["worker"] else faust.App
    app = app_class(
        f"bench-noop-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        datadir=tempfile.mkdtemp(prefix="sevflow-noop-"),
        topic_partitions=defaults.topic_partitions,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    seen = {"records": 0}
    first: list[tuple[float, int]] = []  # (when, records) of the first batch

    @app.agent(source)
    async def noop(stream: Any) -> None:
        batches = worker_batches(stream, app, defaults, batch)
        async for events in batches:
            seen["records"] += len(events)
            if not first:
                first.append((time.perf_counter(), seen["records"]))
            elif seen["records"] >= count:
                when, records = first[0]
                rate = (seen["records"] - records) / max(time.perf_counter() - when, 1e-9)
                # (faust redirects sys.stdout to its log: write to the descriptor itself)
                os.write(1, f"{rate:.0f}\n".encode())
                os._exit(0)  # a figure is all this process is for

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
