"""The receiver's settings: credentials split and kept secret, limits defaulted and validated."""

import pytest
from pydantic import ValidationError

from models.settings import Settings
from sevflow.cli import _load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)


def test_receiver_defaults() -> None:
    settings = Settings()
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.kafka_timeout_seconds < 10  # under Alertmanager's minimum per-flush deadline
    assert settings.rate_limit_per_second == 0  # an emergency switch, off until needed
    assert settings.retry_dedup_seconds > 0


def test_basic_auth_alone_is_enough_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_WEBHOOK_BASIC_AUTH", "amuser:ampass, other:pw:with:colons")
    settings = Settings()
    assert [b.get_secret_value() for b in settings.webhook_basic_auth] == [
        "amuser:ampass",
        "other:pw:with:colons",
    ]
    assert settings.webhook_auth_problem() is None
    assert "ampass" not in repr(settings) + str(settings.model_dump())


def test_basic_auth_without_user_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_WEBHOOK_BASIC_AUTH", "no-colon-hunter2")
    with pytest.raises(SystemExit) as err:
        _load_settings()  # what `sevflow` prints on bad settings
    assert "SEVFLOW_WEBHOOK_BASIC_AUTH" in str(err.value)
    assert "user:password" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_limits_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_MAX_BODY_BYTES", "10")
    with pytest.raises(ValidationError, match="max_body_bytes"):
        Settings()
