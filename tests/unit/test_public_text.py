"""The alert author's impact and resolved_text read as the playbook's sentences on the status
page, whatever the author wrote (sinks/public_text.py, sinks/statuspage_format.py)."""

import pytest

from models.events import IncidentEvent
from models.severity import Severity
from sinks.public_text import impact_phrase, resolution_sentences
from sinks.statuspage_format import SUBJECT_MAX, Components, StatusChange, status_changes
from testkit.fakes.events import IncidentStory

CHECKOUT = Components({"checkout": "Checkout"})
PROMISE = " We will provide an update within 30 minutes."


@pytest.mark.parametrize(
    ("impact", "phrase"),
    [
        ("slow API response times", "slow API response times"),  # the playbook's own
        ("Slow API response times.", "slow API response times"),
        ("Users experiencing slow response times", "users experiencing slow response times"),
        ("API errors for some users", "API errors for some users"),
        ("iOS app crashes on launch", "iOS app crashes on launch"),
        ("I/O errors on uploads", "I/O errors on uploads"),
        ("  Elevated\n  checkout   errors!  ", "elevated checkout errors"),
        ("A partial outage of search", "a partial outage of search"),
        ("Failed payments in the EU", "failed payments in the EU"),
        # Not a noun phrase: a clause, or more than one sentence.
        ("users see errors on checkout", None),
        ("Users see errors on checkout.", None),
        ("Some customers cannot check out", None),
        ("checkout is down", None),
        ("Payments can't be processed", None),
        ("Checkout fails for some users", None),
        ("Checkout errors. Retrying helps", None),
        ("slow search; timeouts", None),
        ("  .  ", None),
        (None, None),
    ],
)
def test_an_impact_reads_as_the_noun_phrase_after_reports_of(
    impact: str | None, phrase: str | None
) -> None:
    assert impact_phrase(impact) == phrase


@pytest.mark.parametrize(
    ("resolved_text", "sentences"),
    [
        (
            "API response times have returned to normal.",
            "The issue has been resolved. API response times have returned to normal.",
        ),
        ("checkout is back to normal", "The issue has been resolved. Checkout is back to normal."),
        (
            "Checkout is back. We apologise for the trouble!",
            "The issue has been resolved. Checkout is back. We apologise for the trouble!",
        ),
        (
            "The issue has been resolved: payments flow again",
            "The issue has been resolved: payments flow again.",
        ),
        ("   ", None),
        (None, None),
    ],
)
def test_a_resolved_text_follows_the_playbooks_resolution(
    resolved_text: str | None, sentences: str | None
) -> None:
    assert resolution_sentences(resolved_text) == sentences


def _changes(events: list[IncidentEvent]) -> list[StatusChange]:
    shown = False
    made: list[StatusChange] = []
    for event in events:
        for change in status_changes(
            event, published=shown, severities=frozenset(Severity), components=CHECKOUT
        ):
            shown = True
            made.append(change)
    return made


@pytest.mark.parametrize(
    ("impact", "opening"),
    [
        ("Slow checkout pages.", "We are investigating reports of slow checkout pages."),
        ("users see errors on checkout", "We are investigating an issue affecting Checkout."),
        (None, "We are investigating an issue affecting Checkout."),
    ],
)
def test_the_investigating_update_is_a_sentence(impact: str | None, opening: str) -> None:
    story = IncidentStory(service="checkout", impact=impact)
    create, *_ = _changes(story.fire() + story.resolve())
    assert create.body == opening + PROMISE


@pytest.mark.parametrize(
    ("resolved_text", "resolution"),
    [
        (
            "checkout response times have returned to normal",
            "The issue has been resolved. Checkout response times have returned to normal.",
        ),
        (None, "The issue has been resolved. Checkout is operating normally."),
    ],
)
def test_the_resolved_update_says_what_returned_to_normal(
    resolved_text: str | None, resolution: str
) -> None:
    annotations = {"resolved_text": resolved_text} if resolved_text else {}
    story = IncidentStory(service="checkout", annotations=annotations)
    *_, resolve = _changes(story.fire() + story.resolve())
    assert resolve.body == resolution


def test_an_alerts_resolved_text_is_cut_as_its_impact_is() -> None:
    """The alert's words are cut to what a public reader reads (SUBJECT_MAX, as the impact);
    a 100,000-character resolved_text went out as a 25,000-character body."""
    story = IncidentStory(service="checkout", annotations={"resolved_text": "all good " * 11_000})
    *_, resolve = _changes(story.fire() + story.resolve())
    assert resolve.body.startswith("The issue has been resolved. All good all good")
    assert len(resolve.body) <= SUBJECT_MAX
