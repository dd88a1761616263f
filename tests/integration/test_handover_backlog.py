"""A backlog of one partition through the worker's consumer (streams/handover.py), in a real faust
app of the worker's class on the test broker.

The agent takes batches of 500 as the worker does (its windows) and spends 100 ms on each, slower
than the records come, so its buffer fills: the partition is held back for it, records are handed
over into a full buffer (the wait for room, then for the buffer to drain), and the fetcher asks
for the quiet topic of a second agent meanwhile (the short fetches). Every record is handed out
once, in order, and committed. How full the batches come (faust's own fetcher let this buffer run
dry for up to a second at a time) is shown by ``bench.pipeline_bench --storm``, not asserted.
"""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from testkit.faust_script import committed_offset, run_app
from testkit.kafka_io import create_topic

pytestmark = pytest.mark.integration

_RECORDS = 12_000
_BATCH = 500

#: Two agents in the worker's faust app class: batches of the busy topic, emitted as their offsets
#: and whether a partition was held for a full buffer (after 100 ms of work each); nothing on the
#: quiet one. ``finish()`` (testkit/faust_script.py) ends with the busy partition's commit.
_AGENTS = """
from models.settings import Settings
from streams.batching import worker_batches

busy, quiet, count = ARGS
count = int(count)
seen = []

@app.agent(app.topic(busy, key_serializer="raw", value_serializer="raw"))
async def take(stream):
    async for events in worker_batches(stream, app, Settings(), BATCH):
        await asyncio.sleep(0.1)
        held = bool(app.consumer._buffered_partitions)
        emit({"offsets": [e.message.offset for e in events], "held": held})
        seen.extend(events)
        if len(seen) >= count:
            asyncio.get_running_loop().call_soon(finish)

@app.agent(app.topic(quiet, key_serializer="raw", value_serializer="raw"))
async def idle(stream):
    async for _ in stream:
        pass
""".replace("BATCH", str(_BATCH))


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for start in range(0, count, 1_000):
            sent = [
                await producer.send(topic, f"record {i} ".encode().ljust(600, b"x"), partition=0)
                for i in range(start, min(start + 1_000, count))
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_a_busy_partition_s_buffer_does_not_run_dry(kafka_bootstrap: str) -> None:
    busy = await create_topic(kafka_bootstrap, "handover-busy")
    quiet = await create_topic(kafka_bootstrap, "handover-quiet")
    await _produce(kafka_bootstrap, busy, _RECORDS)
    group = f"test-handover-{uuid.uuid4().hex[:6]}"
    args = [busy, quiet, str(_RECORDS)]
    batches = await run_app(kafka_bootstrap, group, _AGENTS, args, worker_app=True, timeout=180)
    assert [o for b in batches for o in b["offsets"]] == list(range(_RECORDS))
    assert max(len(b["offsets"]) for b in batches) == _BATCH
    assert any(b["held"] for b in batches)  # (the buffer filled: the held paths ran)
    assert await committed_offset(kafka_bootstrap, group, busy) == _RECORDS
