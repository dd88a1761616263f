"""Every number sevflow reads from the environment has an upper bound, and every role builds
with each at its bound. Before, ``SEVFLOW_UI_SESSION_HOURS=1e300`` stopped the receiver with an
``OverflowError`` traceback, and ``SEVFLOW_SINKS_RETRY_DEADLINE_SECONDS`` of 30 days made the sinks'
consumers ask Kafka for a rebalance timeout past its 32-bit field (the sinks stopped at their
first join)."""

import os
from pathlib import Path
from unittest import mock

import annotated_types
import pytest
from pydantic import ValidationError

from models.settings import Settings

INT32_MAX = 2**31 - 1


def _bound(name: str) -> object:
    field = Settings.model_fields[name]
    bounds: list[object] = [m.le for m in field.metadata if isinstance(m, annotated_types.Le)]
    bounds += [m.lt for m in field.metadata if isinstance(m, annotated_types.Lt)]
    return bounds[0] if bounds else None


NUMBERS = [n for n, f in Settings.model_fields.items() if f.annotation in (int, float)]


def test_every_number_has_an_upper_bound() -> None:
    assert len(NUMBERS) > 50
    assert [n for n in NUMBERS if _bound(n) is None] == []


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("ui_session_hours", "1e300", "less than or equal to 8760"),
        ("ui_session_hours", "9" * 400, "a finite number"),
        ("sinks_concurrency", "9" * 400, "less than or equal to 10000"),
        ("sinks_retry_deadline_seconds", str(30 * 86_400), "less than or equal to 604800"),
    ],
)
def test_a_number_past_its_bound_is_refused_naming_the_setting(
    tmp_path: Path, setting: str, value: str, words: str
) -> None:
    env = {"SEVFLOW_DATA_DIR": str(tmp_path), f"SEVFLOW_{setting.upper()}": value}
    with mock.patch.dict(os.environ, env, clear=True), pytest.raises(ValidationError) as refused:
        Settings()
    assert setting in str(refused.value)
    assert words in str(refused.value)


async def test_the_roles_build_with_every_number_at_its_bound(tmp_path: Path) -> None:
    from sevflow.roles.receiver import build_receiver, receiver_credentials
    from sinks.kafka import sink_consumer

    env = {
        "SEVFLOW_DATA_DIR": str(tmp_path),
        "SEVFLOW_ALLOW_UNAUTHENTICATED": "true",
        "SEVFLOW_UI_ENABLED": "true",
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    }
    env |= {f"SEVFLOW_{n.upper()}": str(_bound(n)) for n in NUMBERS if not n.endswith("_port")}
    with mock.patch.dict(os.environ, env, clear=True):
        settings = Settings()
    receiver = build_receiver(settings, receiver_credentials(settings))  # (the console's sessions)
    for close in receiver.closers:
        await close()
    consumer = sink_consumer(settings, "pagerduty")
    try:
        # What JoinGroup and the poll deadline carry as 32-bit integers.
        assert 0 < consumer._rebalance_timeout_ms <= INT32_MAX
        assert 0 < consumer._max_poll_interval_ms <= INT32_MAX
    finally:
        await consumer.stop()


def test_help_gives_each_number_its_range() -> None:
    from tests.unit.test_cli import run_cli

    shown = run_cli("--help").stdout
    assert "SEVFLOW_UI_SESSION_HOURS  (default: 12.0; range: > 0, <= 8760)" in shown
    assert "SEVFLOW_HTTP_PORT  (default: 8080; range: >= 0, <= 65535)" in shown
    assert "SEVFLOW_KAFKA_BOOTSTRAP  (default: 127.0.0.1:19092)\n" in shown  # (not a number)
