"""What reaches a public status page: an allow-list of the alert's words, nothing of a security
incident until an operator publishes it with words of their own (sinks/statuspage_format.py)."""

from datetime import timedelta

from models.events import EventType, IncidentEvent
from models.severity import Severity
from sinks.dlq import with_flags_of
from sinks.statuspage_format import Components, StatusChange, status_changes
from testkit.fakes.events import T0, IncidentStory

ALL = frozenset(Severity)
SECRET = "AKIAIOSFODNN7EXAMPLE-s3cr3t"
COMPONENTS = Components({"checkout": "Checkout"})
BREACH_SUMMARY = "Exfiltration of customer PII from db-prod-3 by 203.0.113.7"


def changes(events: list[IncidentEvent], components: Components = COMPONENTS) -> list[StatusChange]:
    """The changes a sink makes for ``events`` in order, as a page that remembers what it shows."""
    shown = False
    made: list[StatusChange] = []
    for event in events:
        for change in status_changes(event, published=shown, severities=ALL, components=components):
            shown = True
            made.append(change)
    return made


def words(made: list[StatusChange]) -> str:
    return " ".join(f"{c.name} {c.body or ''} {' '.join(c.components)}" for c in made)


def test_only_the_allow_listed_annotations_and_mapped_components_become_public() -> None:
    story = IncidentStory(
        name="CheckoutDown",
        service="checkout",
        severity=Severity.SEV1,
        summary=f"Checkout pods crashlooping, token {SECRET}",
        impact=None,
        labels={"team": "payments", "api_key": SECRET},
        annotations={"description": f"connection string postgres://app:{SECRET}@db"},
    )
    events = story.fire() + story.fire("fp2", instance="api-2") + story.ack() + story.resolve()
    made = changes(events)
    assert SECRET not in words(made)
    assert "payments" not in words(made)  # neither a label nor an unmapped service
    create, *_, resolve = made
    assert create.name == "Major outage affecting Checkout"
    assert create.body == (
        "We are investigating a major outage affecting Checkout. "
        "We will provide an update within 30 minutes."
    )
    assert create.components == {"Checkout": "major_outage"}
    assert resolve.body == "The issue has been resolved. Checkout is operating normally."


def test_the_public_annotations_are_shown_in_the_playbooks_sentences() -> None:
    story = IncidentStory(
        service="checkout",
        summary="internal title",
        impact="Failed checkouts for some customers.",
        annotations={
            "summary_public": "Checkout errors",
            "resolved_text": "Checkout is back to normal. We apologise for the trouble.",
        },
    )
    create, resolve = changes(story.fire() + story.resolve())
    assert create.name == "Checkout errors"
    assert create.body is not None
    assert create.body.startswith("We are investigating reports of failed checkouts for some customers.")
    assert resolve.body == (
        "The issue has been resolved. Checkout is back to normal. We apologise for the trouble."
    )


def test_public_words_with_nothing_visible_leave_the_pages_own_and_lose_their_controls() -> None:
    """A title of a bell, a direction mark and a zero-width space showed as a blank title."""
    story = IncidentStory(
        service="checkout",
        impact="\u200b\u2060 \t",
        annotations={"summary_public": "\x07\u202e\u200b", "resolved_text": "Back\x07 to\nnormal"},
    )
    create, resolve = changes(story.fire() + story.resolve())
    assert create.name == "Partial outage affecting Checkout"
    assert create.body is not None
    assert "reports of" not in create.body
    assert resolve.body == "The issue has been resolved. Back to normal."


def test_public_words_lose_bidirectional_overrides() -> None:
    """U+202E reverses what follows it on screen: a public title could read otherwise than it
    holds ("Checkout restored" shown for text that says something else)."""
    story = IncidentStory(
        service="checkout",
        annotations={
            "summary_public": "Payments \u202edelayed\u202c",
            "resolved_text": "\u2067All\u2069 clear",
        },
    )
    create, resolve = changes(story.fire() + story.resolve())
    assert create.name == "Payments delayed"
    assert resolve.body == "The issue has been resolved. All clear."


def test_without_a_component_the_text_is_neutral() -> None:
    story = IncidentStory(service="ledger", impact=None)
    (create,) = changes(story.fire(), Components({"checkout": "Checkout"}))
    assert (create.name, create.components) == ("Partial outage", {})
    assert create.body == (
        "We are investigating an issue affecting some of our services. "
        "We will provide an update within 30 minutes."
    )


def breach() -> IncidentStory:
    return IncidentStory(
        name="CustomerDataExfiltration",
        service="checkout",
        severity=Severity.SEV1,
        summary=BREACH_SUMMARY,
        impact="Unauthorized data access",
        data_breach=True,
        annotations={"summary_public": BREACH_SUMMARY, "resolved_text": BREACH_SUMMARY},
    )


def test_a_data_breach_is_held_until_published_then_shows_only_the_operators_words() -> None:
    story = breach()
    held = story.fire() + story.ack()
    assert held[0].incident.held_from_status_page
    assert changes(held) == []  # opened and acknowledged: nothing public
    published = story.publish("Checkout maintenance", "We are looking into an issue with checkout.")
    assert not published[0].incident.held_from_status_page
    later = story.fire("fp2", instance="db-2") + story.resolve()
    made = changes(held + published + later)
    create, *_, resolve = made
    assert (create.kind, create.name, create.body, create.status) == (
        "create",
        "Checkout maintenance",
        "We are looking into an issue with checkout.",
        "identified",
    )
    assert create.components == {"Checkout": "major_outage"}
    assert all(c.name == "Checkout maintenance" for c in made)
    assert resolve.body == "The issue has been resolved. Checkout is operating normally."
    for text in ("PII", "db-prod-3", "Unauthorized", "203.0.113.7", "Exfiltration"):
        assert text not in words(made)


def test_publishing_the_same_words_again_changes_nothing_new_words_update_the_page() -> None:
    story = breach()
    events = story.fire()
    events += story.publish("Checkout issue", "We are investigating.")
    assert story.publish("Checkout issue", "We are investigating.") == []
    (again,) = story.publish("Checkout issue", "A fix is being deployed.", at=T0 + timedelta(hours=1))
    assert again.type is EventType.STATUSPAGE_PUBLISHED
    create, update = changes([*events, again])
    assert (create.kind, update.kind) == ("create", "update")
    assert (update.name, update.body) == ("Checkout issue", "A fix is being deployed.")


def test_an_incident_that_turns_security_after_it_was_shown_gets_only_neutral_updates() -> None:
    story = IncidentStory(
        service="checkout",
        severity=Severity.SEV2,
        impact="Slow checkout",
        annotations={"summary_public": "Slow checkout", "resolved_text": "All good"},
    )
    shown = story.fire()
    story.data_breach = True
    joined = story.fire("fp2", instance="db-2", severity=Severity.SEV1) + story.resolve()
    assert joined[-1].incident.held_from_status_page
    create, *later = changes(shown + joined)
    assert create.name == "Slow checkout"
    assert later  # the public incident is still kept up to date: severity, resolution
    for change in later:
        assert change.name == "Major outage affecting Checkout"
        assert "Slow checkout" not in (change.body or "")
    assert later[-1].body == "The issue has been resolved. Checkout is operating normally."


def test_a_replayed_opening_of_an_incident_that_turned_security_stays_off_the_page() -> None:
    """A dead letter holds the incident as it was when the sink failed; replayed as it was, the
    opening of an incident that had turned security since went on the public page in the
    alert's words. ``sevflow dlq replay`` gives it the flags the incident has now."""
    story = IncidentStory(service="checkout", annotations={"summary_public": "Checkout slowness"})
    (opened, *_) = story.fire()
    story.security = True
    (joined, *_) = story.fire("fp2", instance="db-prod-3")
    assert changes([opened])  # as it was: public
    replayed = with_flags_of(opened, joined.incident)
    assert (replayed.incident.security, replayed.event_id) == (True, opened.event_id)
    assert changes([replayed]) == []
    assert with_flags_of(opened, opened.incident) is opened


def test_a_security_alert_that_reopens_a_published_incident_reopens_it_in_neutral_words() -> None:
    """The reopening came before the alert's security flags: the page reopened the incident in
    the alert's public words, which the incident, now a security one, no longer allows."""
    story = IncidentStory(
        service="checkout",
        impact="slow checkout for some customers",
        annotations={"summary_public": "Checkout slowness"},
    )
    before = story.fire() + story.resolve()
    story.security = True
    reopened = story.fire("fp2", at=T0 + timedelta(minutes=50), instance="db-prod-3")
    assert [e.type for e in reopened] == [EventType.REOPENED, EventType.ALERT_ADDED]
    assert reopened[0].incident.security
    *_, again = changes(before + reopened)
    assert (again.name, again.body) == (
        "Partial outage affecting Checkout",
        "We are investigating an issue affecting Checkout. We will provide an update within 30 minutes.",
    )
