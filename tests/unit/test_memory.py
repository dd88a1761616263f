"""streams/memory.py: the worker gives freed heap memory back, at most once a second."""

import subprocess
import sys

import pytest

from streams.memory import MemoryReturn, malloc_trim
from testkit.local import REPO


def test_a_trim_follows_a_batch_at_most_once_every_interval() -> None:
    now = [100.0]
    calls: list[float] = []
    memory = MemoryReturn(every=1.0, trim=lambda: calls.append(now[0]), clock=lambda: now[0])
    for at in (100.0, 100.4, 100.99, 101.0, 101.5, 103.2):
        now[0] = at
        memory.after_batch()
    assert calls == [100.0, 101.0, 103.2]
    assert memory.trims == 3


def test_without_malloc_trim_nothing_is_called() -> None:
    memory = MemoryReturn(trim=None)
    memory.after_batch()
    assert memory.trims == 0


#: Fills the heap with 1 KB buffers (malloc's, not pymalloc's), keeps one in 32 (the holes a
#: batch leaves between what stays), frees the rest and reports the resident size before and
#: after the trim, in KB.
_FRAGMENTED = """
import sys
from streams.memory import malloc_trim

def rss() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

buffers = [bytes(1024) + bytes([i % 256]) for i in range(100_000)]
kept = buffers[::32]
del buffers
before = rss()
malloc_trim()()
print(before, rss(), len(kept))
"""


@pytest.mark.skipif(malloc_trim() is None or sys.platform != "linux", reason="glibc's malloc_trim")
def test_the_trim_gives_back_the_holes_freed_buffers_leave() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    before, after, _ = (int(n) for n in result.stdout.split())
    # 96,875 freed buffers of 1 KB held about 100 MB; free() alone returned little of it.
    assert before - after > 60_000, (before, after)
