"""``sevflow note ID "text"``: checked against the store, then a note command on the commands
topic, as the API's notes route sends it."""

import asyncio
import io
import re
from pathlib import Path

import pytest

from models.settings import Settings
from sevflow.cli import _parser
from sevflow.commands import note as note_cli
from sevflow.commands.queue import cli_command
from tests.builders import T0, CommandRecorder
from tests.unit.test_escalation_cli import clean_env, incidents_in_every_state

__all__ = ["clean_env"]  # the fixture, used by name


def test_send_note_publishes_a_note_command_with_the_login_as_author() -> None:
    recorder = CommandRecorder()
    command = asyncio.run(
        note_cli.send_note(
            recorder, "inc_1", "rolled back v2.3", by="dave", note="on behalf of ops", now=T0, episode=1
        )
    )
    assert recorder.commands == [command]
    assert (command.action, command.text, command.episode) == ("note", "rolled back v2.3", 1)
    assert (command.actor.via, command.actor.name, command.actor.note) == (
        "cli",
        "dave",
        "on behalf of ops",
    )


def test_the_note_command_is_parsed() -> None:
    args = _parser().parse_args(["note", "inc_1", "rolled back", "--by", "ops"])
    assert (args.command, args.incident_id, args.text, args.by) == (
        "note",
        "inc_1",
        "rolled back",
        "ops",
    )


def _store_without_kafka(tmp_path: Path, env: pytest.MonkeyPatch) -> dict[str, str]:
    """A store with an incident in every state (state -> id), and a Kafka nobody answers."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ids = asyncio.run(incidents_in_every_state(url))
    env.setenv("SEVFLOW_DATABASE_URL", url)
    env.setenv("SEVFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    env.setenv("SEVFLOW_KAFKA_TIMEOUT_SECONDS", "1")
    return ids


@pytest.mark.parametrize(
    ("state", "text", "status", "message"),
    [
        ("unknown", "x", 1, "sevflow note: no incident inc_ffffffffffffffff"),
        ("triggered", " \n ", 2, "the text must be 1 to 2000 characters"),
        ("triggered", "y" * 2001, 2, "the text must be 1 to 2000 characters"),
        # Past the check (a resolved incident takes notes): the note goes to Kafka (none here).
        ("resolved", "postmortem Monday", 1, "sevflow note: could not queue the note: Kafka"),
    ],
)
def test_note_checks_the_incident_and_the_text_before_kafka(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    state: str,
    text: str,
    status: int,
    message: str,
) -> None:
    ids = _store_without_kafka(tmp_path, clean_env)
    out, err = io.StringIO(), io.StringIO()
    code = note_cli.note(Settings(), ids.get(state, "inc_ffffffffffffffff"), text, out=out, err=err)
    assert code == status
    assert message in err.getvalue()
    assert "queued" not in out.getvalue()


def test_a_note_kafka_did_not_confirm_names_the_key_that_makes_a_repeat_the_same_note(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """A note whose publish timed out was still delivered when the producer closed, and the run
    said "could not queue": its repeat, with a new id, was a second note. The failed run names
    its key; the same key with the same text is the same command, applied once."""
    ids = _store_without_kafka(tmp_path, clean_env)
    out, err = io.StringIO(), io.StringIO()
    assert note_cli.note(Settings(), ids["triggered"], "rolled back", out=out, err=err) == 1
    found = re.search(r"--idempotency-key ([0-9a-f]{32}) to retry without doubling it", err.getvalue())
    assert found, err.getvalue()
    key = found.group(1)

    def build(text: str, key: str | None, login: str = "dave") -> str:
        return cli_command(
            ids["triggered"], "note", by=login, note=None, now=T0, episode=0, key=key, text=text
        ).command_id

    assert build("rolled back", key) == build("rolled back", key)
    assert len({build("rolled back", key), build("rolled back", "other"), build("other text", key),
                build("rolled back", key, login="erin"), build("rolled back", None)}) == 5  # fmt: skip
    args = _parser().parse_args(["note", ids["triggered"], "x", "--idempotency-key", key])
    assert args.idempotency_key == key
    with pytest.raises(SystemExit):
        _parser().parse_args(["note", ids["triggered"], "x", "--idempotency-key", "é" * 3])
