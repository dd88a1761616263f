"""Plain-HTTP requests to the servers the tests and benchmarks start on loopback (sevflow's
/metrics and /ready, Alertmanager's API, a bare handler's counter), through one shared client.

Why: ``httpx.get`` builds a client for each call, and every new client loads the CA bundle into
a TLS context, even for an ``http://`` URL: about 20 ms of CPU on the 2-core box, against 0.1 ms
for a request on a client kept open. The benchmarks poll these endpoints up to 20 times a second
while they measure (a worker's processed count, Alertmanager's delivered notifications), which
took 40 % of a core from the processes measured, and held the benchmark's own event loop (its
load generator) 20 ms at a time.
"""

import threading
from typing import Any

import httpx

__all__ = ["local_get", "local_post"]

_lock = threading.Lock()
_client: httpx.Client | None = None


def _shared() -> httpx.Client:
    """The process's client, made on first use (httpx's client is safe across threads)."""
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client()
        return _client


def local_get(url: str, *, timeout: float = 5, **kwargs: Any) -> httpx.Response:
    """``httpx.get`` on the shared client."""
    return _shared().get(url, timeout=timeout, **kwargs)


def local_post(url: str, *, timeout: float = 30, **kwargs: Any) -> httpx.Response:
    """``httpx.post`` on the shared client."""
    return _shared().post(url, timeout=timeout, **kwargs)
