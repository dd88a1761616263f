"""A real faust app in a child process, for the tests of how records reach an agent
(streams/batching.py, streams/handover.py).

A test writes only its agents. Around them this module puts what every such app needs: the app
on the test broker (at least once, from the earliest offset, tables in memory), of faust's class
or of the worker's (``streams.fetching.FetchingApp``); ``emit(document)``, which prints one JSON
line on stdout; ``finish()``, which an agent calls once it has handed out every record: it prints
the result of a commit and ends the process; and the faust worker that runs it. The agents' code
sees the command-line arguments after the bootstrap and group as ``ARGS``.
"""

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from testkit.local import REPO

__all__ = ["committed_offset", "run_app"]

_HEAD = """
import asyncio, json, os, sys, tempfile
import faust
from streams.fetching import FetchingApp

bootstrap, group, *ARGS = sys.argv[1:]
app = APP_CLASS(
    group, broker=f"kafka://{bootstrap}", store="memory://",
    autodiscover=False, web_enabled=False, datadir=tempfile.mkdtemp(prefix="sevflow-app-"),
    processing_guarantee="at_least_once", consumer_auto_offset_reset="earliest",
)

def emit(document):
    os.write(1, (json.dumps(document) + "\\n").encode())

def finish():
    async def commit():
        emit({"committed": await app.consumer.commit()})
        os._exit(0)
    asyncio.ensure_future(commit())
"""

_TAIL = """
worker = faust.Worker(app, loglevel="warning", quiet=True)
worker.spinner = None
worker.execute_from_commandline()
"""


async def run_app(
    bootstrap: str,
    group: str,
    agents: str,
    args: Sequence[str],
    *,
    worker_app: bool = False,
    timeout: float = 120,  # noqa: ASYNC109 - the child is killed, not only waited for
) -> list[Any]:
    """Runs ``agents`` in an app of consumer group ``group`` until it calls ``finish()``; returns
    the documents it emitted before the commit's, which must say the commit succeeded. A child
    still running after ``timeout`` seconds is killed, and the test fails."""
    script = _HEAD.replace("APP_CLASS", "FetchingApp" if worker_app else "faust.App")
    app = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script + agents + _TAIL,
        bootstrap,
        group,
        *args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(app.communicate(), timeout)
    except TimeoutError:
        app.kill()  # never left running after the test
        await app.wait()
        raise
    assert app.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    *documents, last = [json.loads(line) for line in lines if line.startswith(("[", "{"))]
    assert last == {"committed": True}
    return documents


async def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    """The offset consumer group ``group`` committed for the partition, read from the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return int(offsets[TopicPartition(topic, partition)].offset)
