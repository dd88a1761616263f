"""The relay process's way out (streams/relay_process.py ``_until_stopped``): once asked to stop,
the round in flight and the last one get FINAL_ROUNDS_SECONDS, then are cancelled. A round can
wait on Kafka for ever (the producer's start retries a coordinator it cannot find without end),
and a relay waiting in one outlived its worker, SIGTERM included, until Kafka answered again."""

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from models.clock import utc_now
from store.driver_outbox import DriverOutbox
from streams import relay_process
from streams.relay import KafkaEventPublisher, OutboxRelay
from streams.relay_process import _until_stopped


async def test_a_round_that_never_ends_is_given_up_after_the_final_seconds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(relay_process, "FINAL_ROUNDS_SECONDS", 0.2)
    stopping, cancelled = asyncio.Event(), asyncio.Event()

    async def waiting_on_kafka() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stopping.set)
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="streams.relay_process"):
        await asyncio.wait_for(_until_stopped(waiting_on_kafka(), stopping), 5)
    assert 0.2 <= loop.time() - started < 2
    assert cancelled.is_set()
    assert "outbox relay stopped with its last rounds unfinished" in caplog.text


async def test_rounds_that_finish_once_asked_to_stop_end_it_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopping, rounds = asyncio.Event(), []

    async def serving() -> None:
        await stopping.wait()  # (the rounds until asked to stop)
        await asyncio.sleep(0.01)
        rounds.append("last")

    asyncio.get_running_loop().call_later(0.05, stopping.set)
    await asyncio.wait_for(_until_stopped(serving(), stopping), 5)
    assert rounds == ["last"]
    assert "unfinished" not in caplog.text


async def test_a_round_that_fails_fails_the_relay() -> None:
    async def failing() -> None:
        raise OSError("the store's file is gone")

    with pytest.raises(OSError, match="the store's file is gone"):
        await asyncio.wait_for(_until_stopped(failing(), asyncio.Event()), 5)


async def test_a_pause_that_lasts_is_logged_once_per_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay tries again every RELAY_INTERVAL: a store that stays unusable (here one without
    tables; in the field a full disk) logged its pause five times a second."""
    url = f"sqlite:///{tmp_path / 'no-tables.db'}"
    outbox = DriverOutbox(url, "outbox-relay", "test", timedelta(seconds=15))
    publisher = KafkaEventPublisher("127.0.0.1:9", "events", "test-relay")  # (never reached)
    relay = OutboxRelay(outbox, publisher)
    caplog.set_level(logging.WARNING, relay_process.log.name)
    for _ in range(20):
        assert await relay_process.relay_rounds(relay, utc_now) == 0
    paused = [r.getMessage() for r in caplog.records if "outbox relay paused" in r.getMessage()]
    assert len(paused) == 1, paused
    assert "no such table" in paused[0]
