"""The committed JSON Schema of incident-events records matches the code."""

import json

from models.events import IncidentEvent
from testkit.local import REPO


def test_committed_schema_is_current() -> None:
    committed = json.loads((REPO / "docs" / "incident-events.schema.json").read_text())
    assert committed == IncidentEvent.model_json_schema(), (
        "run: sevflow schema > docs/incident-events.schema.json"
    )


def test_every_event_type_is_documented() -> None:
    from models.events import EventType

    text = (REPO / "docs" / "incident-events.md").read_text()
    missing = [t.value for t in EventType if f"`{t.value}`" not in text]
    assert missing == []
