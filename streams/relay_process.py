"""The outbox relay in a process of its own, started and stopped by the stream worker.

Why a process: reading the outbox, producing to Kafka and marking rows published took about a
sixth of the worker's event loop, on the one core a Python process can use, and every alert
waited behind it. In a process of its own the relay runs on another core beside the worker's
batches. The worker wakes it through a pipe as soon as it has committed events, so no page waits
for a poll; the relay still looks every :data:`RELAY_INTERVAL` for what other workers and the
timers stored.

The relay stops when that pipe closes: the worker stopping (it closes its end) or dying in any way
(the kernel closes it), so a relay never outlives its worker. It then publishes what is left,
closes its producer and gives the lease up, each within :data:`FINAL_ROUNDS_SECONDS`: a round can
wait on Kafka for ever (the producer's start retries a coordinator it cannot find), and a relay
waiting in one outlived its worker until Kafka answered again. Whatever still holds it
:data:`HARD_STOP_SECONDS` after it was asked to stop, it is ended (streams/hard_stop.py). It
reports the events it published on a second pipe, one decimal count per line, for the worker's
``events_published`` metric. SIGTERM stops it the same way; SIGINT is left to the worker (a
terminal's Ctrl-C reaches both), which closes the pipe.

Usage (by the worker only): ``python -m streams.relay_process WAKE_FD COUNTS_FD``; the worker
hands the relay its settings (:class:`streams.relay.RelaySettings`) as JSON on its stdin.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from aiokafka.errors import KafkaError

from kafka_admin.client_logs import RepeatLimit, limit_repeats
from models.clock import Clock, utc_now
from store.driver_connect import DriverError, UnsupportedStore
from store.driver_outbox import DriverOutbox
from streams.hard_stop import HardStop
from streams.relay import KafkaEventPublisher, OutboxRelay, RelaySettings

__all__ = ["RELAY_INTERVAL", "RelayProcess", "main", "relay_rounds", "relay_transactional_id"]

log = logging.getLogger(__name__)
# The relay tries again every RELAY_INTERVAL: a store that stays full (or a broker that stays
# away) logged its pause five times a second. The same line is let through once per
# kafka_admin.client_logs.INTERVAL, with the count of those held back.
log.addFilter(RepeatLimit(prefixes=(log.name,)))

#: How often the relay looks at the outbox when nothing has woken it (other workers' events,
#: timers' events, a relay that paused on an error).
RELAY_INTERVAL = 0.2
#: How long the last rounds may take once the relay is asked to stop (Kafka may be down).
FINAL_ROUNDS_SECONDS = 5.0
#: How long a relay asked to stop may take in all before it is ended (streams/hard_stop.py): its
#: last rounds, its producer's close and its lease's release each get FINAL_ROUNDS_SECONDS.
HARD_STOP_SECONDS = 6 * FINAL_ROUNDS_SECONDS
#: Pause before a relay process that died is started again.
RESTART_DELAY = 1.0


async def relay_rounds(relay: OutboxRelay, now: Clock) -> int:
    """Publish until the outbox is drained or an error pauses the relay; the events published."""
    total = 0
    try:
        while published := await relay.run_once(now()):
            total += published
            if published < relay.batch_size:
                break  # the outbox is drained: no need to ask again
    except (DriverError, UnsupportedStore, KafkaError, OSError, TimeoutError) as exc:
        # Nothing is lost: unpublished events stay in the outbox for the next round.
        log.warning("outbox relay paused: %s: %s", type(exc).__name__, exc)
    return total


def relay_transactional_id(app_id: str) -> str:
    """The transactional id every relay of the deployment ``app_id`` publishes under: one id, so
    that Kafka fences a relay that lost its lease (streams/relay.py)."""
    return f"{app_id}-outbox-relay"


class RelayProcess:
    """The worker's side: starts the relay process, wakes it, counts what it published, starts
    it again when it dies, and stops it."""

    def __init__(self, settings: RelaySettings, on_published: Callable[[int], None]) -> None:
        self._settings = settings
        self._on_published = on_published
        self._process: subprocess.Popen[bytes] | None = None
        self._wake: int | None = None  # write end of the wake pipe
        self._counts: int | None = None  # read end of the counts pipe
        self._partial = b""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the relay process (the running loop then reads its counts)."""
        wake_read, wake_write = os.pipe()
        counts_read, counts_write = os.pipe()
        try:
            self._process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
                [sys.executable, "-m", "streams.relay_process", str(wake_read), str(counts_write)],
                pass_fds=(wake_read, counts_write),
                stdin=subprocess.PIPE,
            )
            assert self._process.stdin is not None
            with self._process.stdin as given:  # (a few hundred bytes: the pipe holds them)
                given.write(self._settings.to_bytes())
        except BaseException:
            os.close(wake_write)
            os.close(counts_read)
            raise
        finally:
            os.close(wake_read)
            os.close(counts_write)
        os.set_blocking(wake_write, False)
        os.set_blocking(counts_read, False)
        self._wake, self._counts, self._partial = wake_write, counts_read, b""
        asyncio.get_running_loop().add_reader(counts_read, self._read_counts)

    def wake(self) -> None:
        """Ask the relay to look at the outbox now (events were committed)."""
        if self._wake is None:
            return
        # A full pipe already holds a wake-up; a closed one means the relay died (the worker
        # sees that through :meth:`exited` and starts it again).
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._wake, b"\0")

    def _read_counts(self) -> bool:
        """Count what the relay reported; False once nothing more is waiting."""
        assert self._counts is not None
        try:
            data = os.read(self._counts, 4096)
        except BlockingIOError:
            return False
        if not data:  # the relay exited: nothing more will come
            asyncio.get_running_loop().remove_reader(self._counts)
            return False
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line.strip():
                self._on_published(int(line))
        return True

    def exited(self) -> int | None:
        """The relay process's exit status, or None while it runs (or before it started)."""
        return self._process.poll() if self._process is not None else None

    def _close_pipes(self) -> None:
        if self._wake is not None:
            os.close(self._wake)
            self._wake = None
        if self._counts is not None:
            while self._read_counts():  # what the relay reported before it exited
                pass
            asyncio.get_running_loop().remove_reader(self._counts)
            os.close(self._counts)
            self._counts = None

    async def restart(self) -> None:
        """Start a relay again after the last one died."""
        self._close_pipes()
        await asyncio.sleep(RESTART_DELAY)
        self.start()

    async def stop(self, grace: float) -> None:
        """Close the wake pipe (the relay finishes, publishes what is left, gives the lease up and
        exits) and wait for it; kill it after ``grace`` seconds."""
        process = self._process
        if process is None:
            return
        if self._wake is not None:
            os.close(self._wake)
            self._wake = None
        try:
            await asyncio.to_thread(process.wait, grace)
        except subprocess.TimeoutExpired:
            log.warning("outbox relay did not stop within %.0fs; killing it", grace)
            process.kill()
            await asyncio.to_thread(process.wait)
        self._close_pipes()
        self._process = None


def _report(counts_fd: int, published: int) -> None:
    if published:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(counts_fd, b"%d\n" % published)


async def _run(settings: RelaySettings, wake_fd: int, counts_fd: int) -> None:
    loop = asyncio.get_running_loop()
    publisher = KafkaEventPublisher(
        settings.kafka_bootstrap, settings.events_topic, relay_transactional_id(settings.app_id)
    )
    # Named after the worker, which operators know (and whose restarted relay takes over at once).
    holder = f"{socket.gethostname()}:{os.getppid()}"
    outbox = DriverOutbox(settings.database_url, "outbox-relay", holder, timedelta(seconds=15))
    relay = OutboxRelay(outbox, publisher)
    woken, stopping = asyncio.Event(), asyncio.Event()
    hard_stop = HardStop(HARD_STOP_SECONDS, "outbox relay")

    def on_wake() -> None:
        try:
            data = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if not data:  # the worker closed its end, or died
            loop.remove_reader(wake_fd)
            stopping.set()
            hard_stop.arm()
        woken.set()

    def on_term() -> None:
        stopping.set()
        hard_stop.arm()
        woken.set()

    async def serve() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RELAY_INTERVAL):
                    await woken.wait()
            woken.clear()
            _report(counts_fd, await relay_rounds(relay, utc_now))
        # What the worker committed while stopping: published now rather than at its next start.
        _report(counts_fd, await relay_rounds(relay, utc_now))

    os.set_blocking(wake_fd, False)
    os.set_blocking(counts_fd, False)
    loop.add_reader(wake_fd, on_wake)
    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        await _until_stopped(serve(), stopping)
    finally:
        # Once the producer has finished what it was sending: then the lease is given up, so
        # another worker relays at once. Kept, it held every event back until its expiry.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_ROUNDS_SECONDS):
                await publisher.close()
        try:
            async with asyncio.timeout(FINAL_ROUNDS_SECONDS):
                await relay.release()
        except (DriverError, UnsupportedStore, OSError, TimeoutError) as exc:
            log.warning("outbox relay lease not released: %s: %s", type(exc).__name__, exc)
        await outbox.close()


async def _until_stopped(serving: Coroutine[Any, Any, None], stopping: asyncio.Event) -> None:
    """Run ``serving`` until it ends; once ``stopping`` is set, give what is in flight and the
    last rounds :data:`FINAL_ROUNDS_SECONDS`, then cancel them. A round can wait for ever: the
    producer's start retries an unreachable Kafka without end, and a relay waiting in it when its
    worker died (the pipe closed) outlived the worker until Kafka came back."""
    task = asyncio.ensure_future(serving)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            done, _ = await asyncio.wait({task}, timeout=FINAL_ROUNDS_SECONDS)
            if not done:
                log.warning(
                    "outbox relay stopped with its last rounds unfinished (Kafka or the store not "
                    "answering within %.0fs); the next relay publishes what is left",
                    FINAL_ROUNDS_SECONDS,
                )
    finally:
        for pending in (task, stopped):
            pending.cancel()
        await asyncio.gather(task, stopped, return_exceptions=True)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not all(a.isdigit() for a in args):
        print("usage: python -m streams.relay_process WAKE_FD COUNTS_FD (started by the worker)")
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = RelaySettings.from_bytes(sys.stdin.buffer.read())
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    limit_repeats()
    asyncio.run(_run(settings, int(args[0]), int(args[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
