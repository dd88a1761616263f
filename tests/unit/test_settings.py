from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.settings import Settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.sqlalchemy_url() == f"sqlite:///{(Path('.sevflow') / 'sevflow.db').resolve()}"
    assert settings.webhook_auth_problem() is not None
    # The playbook watches a fix for 15 minutes before closing the incident.
    assert settings.lifecycle_policy().quiet_period == timedelta(minutes=15)


def test_tokens_split_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_WEBHOOK_TOKENS", " a-token , b-token ,")
    monkeypatch.setenv("SEVFLOW_DATABASE_URL", "postgresql://u:hunter2@db/sevflow")
    settings = Settings()
    assert [t.get_secret_value() for t in settings.webhook_tokens] == ["a-token", "b-token"]
    assert settings.webhook_auth_problem() is None
    shown = repr(settings) + str(settings.model_dump())
    assert "a-token" not in shown
    assert "hunter2" not in shown
    assert settings.sqlalchemy_url() == "postgresql://u:hunter2@db/sevflow"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="topic_partitions"):
        Settings()
    monkeypatch.setenv("SEVFLOW_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("SEVFLOW_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="unknown log level"):
        Settings()
    monkeypatch.setenv("SEVFLOW_LOG_LEVEL", "INFO")
    for name in ("SEVFLOW_QUIET_PERIOD_SECONDS", "SEVFLOW_REOPEN_WINDOW_SECONDS"):
        for value in ("inf", "1e11"):  # (overflowed the times they are added to)
            monkeypatch.setenv(name, value)
            with pytest.raises(ValidationError, match=name.removeprefix("SEVFLOW_").lower()):
                Settings()
        monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "servers",
    ["127.0.0.1:19092", "kafka-0.kafka:9092, kafka-1.kafka:9092", "kafka", "[::1]:9092", "::1"],
)
def test_kafka_bootstrap_accepts_what_the_client_parses(
    monkeypatch: pytest.MonkeyPatch, servers: str
) -> None:
    monkeypatch.setenv("SEVFLOW_KAFKA_BOOTSTRAP", servers)
    assert Settings().kafka_bootstrap == servers


@pytest.mark.parametrize(
    "servers", ["kafka:", "kafka:port", "kafka:0", "kafka:65536", ":9092", "not a host::", ",", ""]
)
def test_kafka_bootstrap_that_the_client_cannot_parse_is_refused(
    monkeypatch: pytest.MonkeyPatch, servers: str
) -> None:
    # The Kafka client raised a bare ValueError (a traceback) from every command using Kafka.
    monkeypatch.setenv("SEVFLOW_KAFKA_BOOTSTRAP", servers)
    with pytest.raises(ValidationError, match="kafka_bootstrap"):
        Settings()


def test_statuspage_components_name_a_bad_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVFLOW_STATUSPAGE_COMPONENTS", " api = cmp1 ,web=cmp2,")
    assert Settings().statuspage_components == {"api": "cmp1", "web": "cmp2"}
    # Python's own "not enough values to unpack" was all an entry without '=' got.
    monkeypatch.setenv("SEVFLOW_STATUSPAGE_COMPONENTS", "api=cmp1,web")
    with pytest.raises(ValidationError, match="each entry must be service=component-id, not 'web'"):
        Settings()
