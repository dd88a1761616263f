"""``sevflow ack|resolve|escalations`` and the escalation settings."""

import argparse
import io
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.events import Actor, EventType
from models.incident import Command, LifecyclePolicy
from models.settings import Settings
from sevflow.commands import escalate as escalation_cli
from store.db import async_engine, sync_engine
from store.escalation_schema import escalations
from store.incidents import IncidentStore
from store.schema import metadata
from streams.escalation import load_policy, run_escalations
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, CommandRecorder, alert

M = timedelta(minutes=1)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)
    return monkeypatch


async def test_send_command_publishes_an_escalation_to_the_manager() -> None:
    publisher = CommandRecorder()
    command = await escalation_cli.send_command(
        publisher, "inc_0123456789abcdef", "escalate", by="alice", now=T0, episode=0
    )
    assert publisher.commands == [command]
    assert (command.action, command.to, command.episode) == ("escalate", "manager", 0)


async def test_send_command_publishes_a_cli_command() -> None:
    publisher = CommandRecorder()
    command = await escalation_cli.send_command(
        publisher, "inc_0123456789abcdef", "acknowledge", by="alice", now=T0
    )
    assert publisher.commands == [command]
    assert (command.actor.via, command.actor.name, command.action) == ("cli", "alice", "acknowledge")
    assert command.command_id.startswith("cli:")


def test_subcommands_parse() -> None:
    parser = argparse.ArgumentParser(prog="sevflow")
    sub = parser.add_subparsers(dest="command", required=True)
    escalation_cli.add_parsers(sub)
    args = parser.parse_args(["ack", "inc_1", "--by", "bob"])
    assert (args.command, args.incident_id, args.by) == ("ack", "inc_1", "bob")
    assert parser.parse_args(["escalations"]).incident_id is None
    assert set(escalation_cli.NAMES) == {"ack", "resolve", "escalate", "escalations"}
    args = parser.parse_args(["escalate", "inc_1", "--to", "manager"])
    assert (args.command, args.incident_id, args.to) == ("escalate", "inc_1", "manager")
    with pytest.raises(SystemExit):
        parser.parse_args(["escalate", "inc_1", "--to", "ceo"])
    with pytest.raises(SystemExit):
        parser.parse_args(["escalate", "inc_1"])


async def test_resolve_takes_the_closing_details_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="sevflow")
    sub = parser.add_subparsers(dest="command", required=True)
    escalation_cli.add_parsers(sub)
    args = parser.parse_args(
        [
            "resolve",
            "inc_1",
            "--root-cause",
            "slow query",
            "--fix",
            "index added",
            "--follow-up",
            "JIRA-9",
        ]
    )
    assert (args.root_cause, args.fix, args.follow_up) == ("slow query", "index added", "JIRA-9")
    publisher = CommandRecorder()
    details = {"root_cause": args.root_cause, "fix": args.fix, "follow_up": args.follow_up}
    command = await escalation_cli.send_command(
        publisher, "inc_1", "resolve", by="alice", now=T0, details=details
    )
    assert command.details() == details
    with pytest.raises(SystemExit):
        parser.parse_args(["resolve", "inc_1", "--fix", "x" * 1001])
    assert "at most 1000 characters" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["ack", "inc_1", "--root-cause", "x"])  # a resolution's, not an ack's


async def test_escalations_command_prints_what_fires_next(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    assert escalations.name in metadata.tables
    aengine = async_engine(url)
    try:
        store = IncidentStore(aengine)
        pipeline = Pipeline(store, load_rules(None), LifecyclePolicy())
        opened = await pipeline.process_alerts([alert("ApiDown", severity="sev1")])
        await run_escalations(store, load_policy(None), T0)
    finally:
        await aengine.dispose()
    incident_id = opened[0].incident_id
    assert opened[0].type is EventType.OPENED

    clean_env.setenv("SEVFLOW_DATABASE_URL", url)
    settings = Settings()
    # The command runs its own event loop: run it in a thread, as the CLI would run it.
    import asyncio

    out = io.StringIO()
    status = await asyncio.to_thread(escalation_cli.escalations, settings, now=T0 + 5 * M, out=out)
    assert status == 0
    text = out.getvalue()
    assert incident_id in text
    assert "level 2 secondary on-call → Secondary On-Call at 2026-11-27 12:15:00Z (in 10m)" in text
    assert "acknowledge due: 2026-11-27 12:15:00Z (in 10m)" in text

    detail = io.StringIO()
    await asyncio.to_thread(
        escalation_cli.escalations, settings, incident_id=incident_id, now=T0 + 5 * M, out=detail
    )
    assert f"escalation {incident_id}#0  SEV1  active" in detail.getvalue()
    assert "level:1: notifying primary on-call" in detail.getvalue()


async def incidents_in_every_state(url: str) -> dict[str, str]:
    """A triggered, an acknowledged and a resolved incident in a new store: state -> id."""
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    aengine = async_engine(url)
    try:
        store = IncidentStore(aengine)
        pipeline = Pipeline(store, load_rules(None), LifecyclePolicy())
        ids = {}
        for state, name in (("triggered", "ApiDown"), ("acknowledged", "DbDown"), ("resolved", "Q")):
            opened = await pipeline.process_alerts([alert(name, severity="sev1")])
            ids[state] = opened[0].incident_id
        for state, action in (("acknowledged", "acknowledge"), ("resolved", "resolve")):
            command = Command(
                command_id=f"test-{state}",
                action=action,  # type: ignore[arg-type]
                incident_id=ids[state],
                actor=Actor(via="api", name="carol"),
                requested_at=T0 + M,
            )
            await pipeline.process_command(command)
    finally:
        await aengine.dispose()
    return ids


@pytest.mark.parametrize(
    ("command", "state", "status", "message"),
    [
        ("ack", "unknown", 1, "sevflow ack: no incident inc_ffffffffffffffff"),
        ("resolve", "unknown", 1, "sevflow resolve: no incident inc_ffffffffffffffff"),
        ("ack", "resolved", 1, "was resolved at 2026-11-27 12:01:00Z by carol (api): there is nothing"),
        ("ack", "acknowledged", 0, "was acknowledged at 2026-11-27 12:01:00Z by carol (api): nothing"),
        ("resolve", "resolved", 0, "was resolved at 2026-11-27 12:01:00Z by carol (api): nothing to do"),
        # Past the check: the command goes to Kafka (none here, so it is not queued).
        ("ack", "triggered", 1, "sevflow ack: could not queue the command: Kafka"),
        ("resolve", "acknowledged", 1, "sevflow resolve: could not queue the command: Kafka"),
        ("escalate", "resolved", 1, "there is nothing to escalate"),
        ("escalate", "unknown", 1, "sevflow escalate: no incident inc_ffffffffffffffff"),
        ("escalate", "acknowledged", 1, "sevflow escalate: could not queue the command: Kafka"),
    ],
)
async def test_ack_and_resolve_check_the_incident_before_queuing(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    state: str,
    status: int,
    message: str,
) -> None:
    # An unknown incident, or acknowledging a resolved one, was "queued" with exit 0 and then
    # dropped by the worker without a word.
    import asyncio

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ids = await incidents_in_every_state(url)
    clean_env.setenv("SEVFLOW_DATABASE_URL", url)
    clean_env.setenv("SEVFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    clean_env.setenv("SEVFLOW_KAFKA_TIMEOUT_SECONDS", "1")
    incident_id = ids.get(state, "inc_ffffffffffffffff")
    run = {
        "ack": escalation_cli.ack,
        "resolve": escalation_cli.resolve,
        "escalate": escalation_cli.escalate,
    }[command]
    out = io.StringIO()
    code = await asyncio.to_thread(run, Settings(), incident_id, by="dave", out=out)
    assert code == status
    assert message in out.getvalue() + capsys.readouterr().err
    assert "queued (command" not in out.getvalue()


def test_ack_is_queued_unchecked_when_the_store_cannot_be_read(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SEVFLOW_DATABASE_URL", "postgresql://ops:hunter2@127.0.0.1:1/sevflow")
    clean_env.setenv("SEVFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert escalation_cli.ack(Settings(), "inc_0123456789abcdef", out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "cannot check inc_0123456789abcdef in the incident store (connection failed" in err
    assert "queuing the command unchecked" in err
    assert "could not queue the command: Kafka" in err  # it did try
    assert "hunter2" not in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///{tmp}/empty.db", "no such table: escalations (run `sevflow init-db` first)"),
        ("mysql://ops:hunter2@db.example/sevflow", "unsupported database 'mysql'"),
        ("postgresql://ops:hunter2@127.0.0.1:1/sevflow", "cannot read the incident store"),
    ],
)
def test_escalations_command_names_a_store_problem(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, url: str, message: str
) -> None:
    clean_env.setenv("SEVFLOW_DATABASE_URL", url.format(tmp=tmp_path))
    out, err = io.StringIO(), io.StringIO()
    for incident_id in (None, "inc_0123456789abcdef"):
        status = escalation_cli.escalations(Settings(), incident_id=incident_id, out=out, err=err)
        assert status == 1
    assert out.getvalue() == ""
    assert message in err.getvalue()
    assert "hunter2" not in err.getvalue()


def test_escalation_settings_from_the_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("SEVFLOW_API_TOKENS", "bot:read,write:tok-a, ops:admin:tok-b")
    clean_env.setenv("SEVFLOW_SLACK_SIGNING_SECRET", "slack-secret-value")
    clean_env.setenv("SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS", "pd-new,pd-old")
    clean_env.setenv("SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN", "acme")
    clean_env.setenv("SEVFLOW_SLACK_TEAM_ID", "T0123")
    clean_env.setenv("SEVFLOW_SLACK_TOKEN", "xoxb-token")
    clean_env.setenv("SEVFLOW_ESCALATION_PAGERDUTY_ROUTING_KEYS", "primary=key-one,secondary=key-two")
    clean_env.setenv("SEVFLOW_ESCALATION_POLICY_FILE", str(tmp_path / "policy.yaml"))
    settings = Settings()
    assert [(t.name, t.secret.get_secret_value()) for t in settings.api_tokens] == [
        ("bot", "tok-a"),
        ("ops", "tok-b"),
    ]
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == "slack-secret-value"
    assert [s.get_secret_value() for s in settings.pagerduty_webhook_secrets] == ["pd-new", "pd-old"]
    assert settings.escalation_pagerduty_routing_keys["secondary"].get_secret_value() == "key-two"
    assert settings.escalation_policy_file == tmp_path / "policy.yaml"
    shown = repr(settings) + str(settings.model_dump())
    for secret in ("tok-a", "slack-secret-value", "pd-old", "key-one"):
        assert secret not in shown


def test_escalation_settings_defaults_and_refusals(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.escalation_policy_file is None
    assert settings.escalation_interval_seconds == 5.0
    assert settings.slack_signing_secret is None
    assert settings.api_tokens == []
    for name in ("escalation_policy_file", "api_tokens", "slack_signing_secret"):
        assert Settings.model_fields[name].description
    clean_env.setenv("SEVFLOW_ESCALATION_PAGERDUTY_ROUTING_KEYS", "primary:secret-key-value")
    with pytest.raises(ValidationError, match="name=routing-key") as caught:
        Settings()
    # What `sevflow` prints (errors without their input) never shows the key.
    assert "secret-key-value" not in str(caught.value.errors(include_input=False))
