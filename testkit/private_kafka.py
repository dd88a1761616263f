"""A Kafka broker of a test's own, and reading a topic until it is quiet (end-to-end tests)."""

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.local import REPO, free_port

__all__ = ["PrivateKafka", "read_topic"]


@dataclass
class PrivateKafka:
    """A broker of a test's own (scripts/kafka.sh on other ports, data under ``home``).

    For tests that stop and start Kafka: the broker the other tests share is never touched.
    """

    home: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    heap: str = "384m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, action: str) -> None:
        env = dict(
            os.environ,
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_HEAP=self.heap,
            SEVFLOW_HOME=str(self.home),
        )
        result = subprocess.run(
            [str(REPO / "scripts" / "kafka.sh"), action],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"scripts/kafka.sh {action} failed:\n{result.stderr[-4000:]}")

    def start(self) -> "PrivateKafka":
        self._script("start")
        return self

    def stop(self) -> None:
        self._script("stop")

    def kill(self) -> None:
        """``kill -9`` the broker (a crash: no controlled shutdown), and wait until it is gone."""
        pidfile = self.home / f"kafka-{self.port}" / "broker.pid"
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError(f"the broker {pid} outlived SIGKILL")


def read_topic(
    bootstrap: str, topic: str, *, expect: int = 1, settle: float = 2.0, timeout: float = 60
) -> list[Any]:
    """Every record of ``topic``, read until there are at least ``expect`` and nothing new has
    arrived for ``settle`` seconds (so extra, duplicate records would be seen), or ``timeout``."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            request_timeout_ms=10_000,
        )
        await asyncio.wait_for(consumer.start(), 20)
        seen: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                got = [m for messages in batch.values() for m in messages]
                if got:
                    seen.extend(got)
                    quiet_since = time.monotonic()
                elif len(seen) >= expect and time.monotonic() - quiet_since >= settle:
                    break
        finally:
            await consumer.stop()
        return seen

    return asyncio.run(read())
