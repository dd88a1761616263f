"""The garbage collector of a long-running role, settled once the role is built.

The objects a role builds at start-up (the imports, the app, the rules and policies, the clients)
live as long as the process. Left to the collector, every full collection walks them again, and a
role that handles thousands of events a second allocates fast enough for full collections to
come often: each is a pause of the event loop that every event in flight waits for. Frozen
after start-up (:func:`gc.freeze`), they are never walked again; and since reference counting
frees nearly everything a record allocates, a young generation far larger than CPython's 700
collects as much for far less CPU.

Measured on the 2-core box (bench/README.md): the pipeline alone took about 30 % more alerts per
CPU-second; the sinks role at 200 alerts/s about 6 % less CPU per alert, and the webhook → page
p99 of ``bench.e2e_latency`` fell from 177-187 ms to 135-145 ms (three alternating pairs).
"""

import gc

__all__ = ["SETTLED_THRESHOLDS", "settle_collector"]

#: The collector's thresholds once settled: a young generation of 50,000 allocations, the two
#: older ones collected 50 and 100 times less often than CPython's 10 and 10.
SETTLED_THRESHOLDS = (50_000, 50, 100)


def settle_collector(thresholds: tuple[int, ...] = SETTLED_THRESHOLDS) -> None:
    """Collect once, freeze what survived, and set the collector's ``thresholds``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
