"""Which URLs become links (models.web_links), and the PagerDuty event's links built with it."""

import pytest

from models.web_links import MAX_URL_CHARS, web_url
from sinks.pagerduty_format import trigger_call
from testkit.fakes.events import IncidentStory


@pytest.mark.parametrize(
    "url",
    [
        "http://prometheus:9090/graph?g0.expr=up",
        "https://grafana.example.com/d/abc?orgId=1&var-x=a%20b",
        "HTTPS://Example.COM",
        "http://[::1]:9093/#/alerts",
        "https://runbooks.example.com/" + "x" * (MAX_URL_CHARS - 30),
    ],
)
def test_http_urls_are_links(url: str) -> None:
    assert web_url(url) == url
    assert web_url(f"  {url}\n") == url  # surrounding blanks are not part of it


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.example.com/x",
        "//example.com/no-scheme",
        "/relative/path",
        "example.com",
        "https:///no-host",
        "http://[::1/unbalanced",
        "http://example.com/a b",
        "http://example.com/\x00",
        "http://exa\tmple.com/",
        "https://example.com/" + "x" * MAX_URL_CHARS,
    ],
)
def test_anything_else_is_text(url: str | None) -> None:
    assert web_url(url) is None


def test_the_pagerduty_event_links_only_http_urls() -> None:
    (opened, *_) = IncidentStory(
        labels={"namespace": "shop"}, annotations={"runbook_url": "javascript:alert(1)"}
    ).fire()
    incident = opened.incident.model_copy(
        update={"generator_url": "not a url", "external_url": "https://am.example.com"}
    )
    alert = opened.alert.model_copy(update={"generator_url": "data:,x"}) if opened.alert else None
    call = trigger_call(opened.model_copy(update={"incident": incident, "alert": alert}))
    assert call.links == [{"href": "https://am.example.com", "text": "Alertmanager"}]
