"""A note on the timeline: a ``note`` command the worker applies as a ``note_added`` event, once,
changing no state (through the real pipeline and a real SQLite store)."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from analytics.postmortem import describe_event
from models.events import Actor, EventType
from models.incident import Command, Incident, LifecyclePolicy
from models.timeline_notes import NOTE_TEXT_MAX, note_text
from store.db import async_engine
from store.incidents import IncidentStore
from streams.pipeline import CommandResult, Pipeline
from streams.rules import load_rules
from tests.builders import T0
from tests.unit.test_escalation_cli import incidents_in_every_state


def _note(incident_id: str, text: str, command_id: str = "note-1", episode: int | None = 0) -> Command:
    return Command(
        command_id=command_id,
        action="note",
        incident_id=incident_id,
        actor=Actor(via="api", name="carol"),
        requested_at=T0 + timedelta(minutes=3),
        episode=episode,
        text=text,
    )


def test_a_note_is_one_clean_line_within_its_limit() -> None:
    assert note_text("rolled back\nthe deploy\u202e ") == "rolled back the deploy"
    assert note_text(" \x00\n ") is None
    assert len(note_text("x" * 5000) or "") == NOTE_TEXT_MAX
    with pytest.raises(ValidationError, match="text"):
        Command(
            command_id="c",
            action="note",
            incident_id="inc_1",
            actor=Actor(via="cli"),
            requested_at=T0,
        )
    with pytest.raises(ValidationError, match="text"):
        Command(
            command_id="c",
            action="acknowledge",
            incident_id="inc_1",
            actor=Actor(via="cli"),
            requested_at=T0,
            text="a note on an acknowledgement",
        )


async def _apply_twice(url: str) -> tuple[list[CommandResult], Incident | None, Incident | None]:
    ids = await incidents_in_every_state(url)
    engine = async_engine(url)
    try:
        store = IncidentStore(engine)
        pipeline = Pipeline(store, load_rules(None), LifecyclePolicy())
        before = await store.get(ids["acknowledged"])
        first = await pipeline.process_command(_note(ids["acknowledged"], "rolled back\nv2.3"))
        again = await pipeline.process_command(_note(ids["acknowledged"], "rolled back\nv2.3"))
        on_resolved = await pipeline.process_command(
            _note(ids["resolved"], "postmortem Monday", "note-2", episode=None)
        )
        after = await store.get(ids["acknowledged"])
        return [first, again, on_resolved], before, after
    finally:
        await engine.dispose()


def test_the_worker_adds_a_note_once_and_changes_no_state(tmp_path: Path) -> None:
    (first, again, on_resolved), before, after = asyncio.run(
        _apply_twice(f"sqlite:///{tmp_path / 'store.db'}")
    )
    assert first.applied
    (event,) = first.events
    assert event.type is EventType.NOTE_ADDED
    assert event.data == {"text": "rolled back v2.3"}
    assert event.actor.name == "carol"
    assert (again.applied, again.reason) == (False, "command already applied")
    assert on_resolved.applied  # a resolved incident takes notes too
    assert before is not None
    assert after is not None
    assert after.state is before.state
    assert after.acknowledged_at == before.acknowledged_at
    assert describe_event(event) == "Note by carol (api): rolled back v2.3"
