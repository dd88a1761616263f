"""Freed memory handed back to the system while the worker applies batches.

Why: Python hands every object above 512 bytes (a record's bytes, Kafka's fetch buffers, a
batch's rows and documents) to the C library's ``malloc``. glibc keeps what is freed for reuse
and gives memory back to the system only from the top of its heap, so the holes a batch leaves
stay resident. Over a 100,000-alert storm the worker's resident memory grew by 30-46 MB and
stayed there once the storm was over: memory a container's limit counts, and most of the
worker's part of issue #17's memory target. ``malloc_trim(0)`` returns every free page of the
heap. It takes about 1.4 ms on the worker's heap, so :class:`MemoryReturn` calls it at most once
every :data:`TRIM_EVERY_SECONDS` while batches are applied (about 0.15 % of a core), and never
while the worker is idle: an idle worker frees nothing. (bench/README.md, "The storm's memory".)

Where the C library has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

import ctypes
import ctypes.util
import time
from collections.abc import Callable

__all__ = ["TRIM_EVERY_SECONDS", "MemoryReturn", "malloc_trim"]

#: The shortest time between two trims.
TRIM_EVERY_SECONDS = 1.0


def malloc_trim() -> Callable[[], object] | None:
    """The C library's ``malloc_trim(0)``, or None where it has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


#: This process's C library's trim (looked up once).
_TRIM = malloc_trim()


class MemoryReturn:
    """Trims the heap after a batch, at most once every ``every`` seconds of ``clock``; ``trim``
    None: nothing to call (no ``malloc_trim`` here)."""

    def __init__(
        self,
        every: float = TRIM_EVERY_SECONDS,
        trim: Callable[[], object] | None = _TRIM,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every = every
        self._trim = trim
        self._clock = clock
        self._last: float | None = None
        self.trims = 0

    def after_batch(self) -> None:
        """A batch was applied: give freed memory back when the last trim is old enough."""
        if self._trim is None:
            return
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return
        self._trim()
        self._last = self._clock()
        self.trims += 1
