"""Every vendor call fits its vendor's documented limits (sinks.limits), cut visibly and never
inside a character, an escape or a mention: pure functions, in milliseconds."""

import json

from models.events import IncidentSnapshot
from models.severity import Severity
from sinks.limits import (
    PAGERDUTY_EVENT_MAX_BYTES,
    SLACK_SECTION_TEXT_MAX,
    SLACK_TEXT_MAX,
    STATUSPAGE_BODY_MAX,
    STATUSPAGE_NAME_MAX,
    TRUNCATED,
    clip,
    clip_mrkdwn,
    text_length,
)
from sinks.pagerduty_format import (
    PagerDutyCall,
    digest_call,
    escalation_calls,
    event_size,
    fit,
    pagerduty_calls,
)
from sinks.slack_format import announcement, coalesce, digest, resolution, update_line
from sinks.statuspage_format import status_changes
from testkit.fakes.events import T0, IncidentStory


def _sent_bytes(call: PagerDutyCall) -> int:
    """The body the ``pagerduty`` client sends (compact UTF-8, with the routing key)."""
    payload = {"summary": call.summary, "source": call.source, "severity": call.severity}
    event = {"event_action": call.action, "payload": {**payload, **call.payload},
             "dedup_key": call.dedup_key, "routing_key": "R" * 32, "links": call.links}  # fmt: skip
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())


def test_clip_counts_utf16_units_and_never_splits_a_character() -> None:
    assert clip("short", 10) == "short"
    text = "😀" * 100  # 200 UTF-16 units
    cut = clip(text, 51)
    assert text_length(cut) <= 51
    assert cut.endswith(TRUNCATED)
    assert set(cut.removesuffix(TRUNCATED)) == {"😀"}  # whole emoji only
    assert cut.encode("utf-16-le").decode("utf-16-le") == cut  # no lone surrogate
    assert clip("x" * 100, 50, "… (see inc_1)") == "x" * 37 + "… (see inc_1)"


def test_clip_mrkdwn_never_ends_inside_an_escape_or_a_mention() -> None:
    for n in range(30):
        text = "a" * n + "&amp; <@U0123456> &lt;b&gt; " + "z" * 50
        cut = clip_mrkdwn(text, 40)
        body = cut.removesuffix(TRUNCATED)
        assert text_length(cut) <= 40
        assert cut.endswith(TRUNCATED)
        assert text.startswith(body)
        assert body.rfind("&") <= body.rfind(";")  # every escape whole
        assert body.rfind("<") <= body.rfind(">")  # every mention whole


def _huge() -> IncidentStory:
    return IncidentStory(
        severity=Severity.SEV1,
        summary="Checkout & <!channel> " + "s" * 8192,
        impact=None,
        labels={f"label_{n:03d}": "😀 a&b " + "x" * 3000 for n in range(300)},
        annotations={"description": "d" * 900_000},
    )


def test_a_trigger_with_huge_labels_fits_512_kb_keeping_every_label() -> None:
    story = _huge()
    (call,) = pagerduty_calls(story.fire()[0], paged=False, severities=frozenset(Severity))
    assert _sent_bytes(call) <= event_size(call) <= PAGERDUTY_EVENT_MAX_BYTES
    assert event_size(call) > PAGERDUTY_EVENT_MAX_BYTES * 0.9  # cut no more than needed
    incident_id = story.events[0].incident_id
    assert len(call.summary) <= 1024
    assert call.summary.endswith(f"… (truncated, see sevflow incidents show {incident_id})")
    details = call.payload["custom_details"]
    assert f"sevflow incidents show {incident_id}" in details["truncated"]
    assert len(details["labels"]) == 304
    assert all(v.endswith(TRUNCATED) for k, v in details["labels"].items() if k.startswith("label_"))
    assert details["labels"]["alertname"] == "HighErrorRate"  # short values stay whole
    assert details["impact"].endswith(TRUNCATED)


def test_too_many_labels_are_counted_when_left_out() -> None:
    story = IncidentStory(labels={f"l{n:06d}": "v" * 70 for n in range(8000)})
    (call,) = pagerduty_calls(story.fire()[0], paged=False, severities=frozenset(Severity))
    assert event_size(call) <= PAGERDUTY_EVENT_MAX_BYTES
    labels = call.payload["custom_details"]["labels"]
    assert labels["…"].endswith("more left out")
    assert 1000 < len(labels) < 8004


def test_escalation_and_digest_triggers_fit_too() -> None:
    story = _huge()
    data = {"level": "2", "targets": json.dumps([{"kind": "pagerduty", "to": "secondary"}])}
    story.fire()
    (escalated,) = story.escalate(data, T0, "no acknowledgement")
    for _, call in escalation_calls(escalated, {"secondary"}):
        assert event_size(call) <= PAGERDUTY_EVENT_MAX_BYTES
        assert call.summary.startswith("Escalated to secondary")
    snapshots = [
        IncidentSnapshot.model_validate({**story.events[0].incident.model_dump(), "id": f"inc_{n}"})
        for n in range(200)
    ]
    call = digest_call("s1", snapshots, "2026-01-15 14:30 UTC")
    assert event_size(call) <= PAGERDUTY_EVENT_MAX_BYTES
    assert call.payload["custom_details"]["truncated"].endswith("sevflow incidents list")
    small = PagerDutyCall("trigger", "k", "s", "x", "info", {"custom_details": {"a": "b"}})
    assert fit(small, "there") == small  # what fits is not touched


def test_slack_messages_of_a_huge_incident_fit_with_a_marker() -> None:
    story = _huge()
    events = story.fire() + story.fire("fp2", instance="api-2") + story.resolve()
    incident = events[0].incident
    marker = f"… (truncated, see `sevflow incidents show {incident.id}`)"
    lines = [line for e in events if (line := update_line(e))]
    messages = [
        announcement(incident, lead="@oncall", channel="incident-20260115-x"),
        coalesce(lines * 40),
        resolution(events[-1]),
        digest({f"inc_{n}": incident.title for n in range(100)}, T0),
    ]
    for message in messages:
        assert text_length(message.text) <= SLACK_TEXT_MAX
        for block in message.blocks:
            if block["type"] in ("section", "context"):
                texts = [block["text"]] if "text" in block else block["elements"]
                assert all(text_length(t["text"]) <= SLACK_SECTION_TEXT_MAX for t in texts)
    assert marker in messages[0].text
    assert messages[0].text.endswith("Updates in #incident-20260115-x")  # its own words stay
    assert marker in lines[0]


def test_status_page_name_and_bodies_fit_statuspage() -> None:
    story = IncidentStory(impact="i" * 900_000, service="api", annotations={"summary_public": "t" * 600})
    events = story.fire() + story.resolve()
    severities = frozenset(Severity)
    (create,) = status_changes(events[0], published=False, severities=severities)
    (resolve,) = status_changes(events[-1], published=True, severities=severities)
    for change in (create, resolve):
        assert text_length(change.name) <= STATUSPAGE_NAME_MAX
        assert change.name.endswith(TRUNCATED)
        assert change.body is not None
        assert text_length(change.body) <= STATUSPAGE_BODY_MAX
    assert create.body is not None
    assert create.body.startswith("We are investigating reports of iii")
    assert TRUNCATED in create.body


def test_labels_of_blanks_never_make_a_blank_source_component_group_or_class() -> None:
    """PagerDuty answers 400 "'payload.source' is missing or blank" (no retry cures it): an
    ``instance`` of spaces was sent as the source, and the incident never paged."""
    story = IncidentStory(
        name=" ", service="  ", labels={"namespace": " \t", "cluster": "", "job": "  api  "}
    )
    every = frozenset(Severity)
    (call,) = pagerduty_calls(story.fire(instance="   ")[0], paged=False, severities=every)
    assert call.source == "api"  # the job label, the service labels before it being blank
    assert (call.payload["group"], call.payload["component"]) == ("api", "api")
    assert call.payload["class"].strip()
    named = IncidentStory(labels={"namespace": "shop"})
    (call,) = pagerduty_calls(named.fire(instance=" db-1 ")[0], paged=False, severities=every)
    assert (call.source, call.payload["component"], call.payload["group"]) == ("db-1", "api", "shop")
