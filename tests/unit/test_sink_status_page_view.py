"""The built-in status page's view and HTML (pure)."""

from dataclasses import replace
from datetime import timedelta

from sinks.status_server import page_view, public_id, render_html
from store.status_page import StatusPageRecord
from testkit.fakes.events import T0


def record(
    incident_id: str, status: str, components: dict[str, str], resolved: bool = False
) -> StatusPageRecord:
    return StatusPageRecord(
        incident_id=incident_id,
        name="API <errors> & timeouts",
        status=status,
        impact="major",
        components=components,
        updates=[
            {
                "at": T0.isoformat(),
                "status": "Investigating",
                "body": "We are investigating reports of <x>.",
            }
        ],
        created_at=T0,
        updated_at=T0,
        resolved_at=T0 + timedelta(hours=1) if resolved else None,
    )


def test_view_shows_worst_component_status() -> None:
    view = page_view(
        [
            record("a", "investigating", {"api": "partial_outage"}),
            record("b", "identified", {"api": "major_outage"}),
        ],
        [record("c", "resolved", {"web": "operational"}, resolved=True)],
        T0,
    )
    assert view["status"] == {"indicator": "critical", "description": "Service disruption"}
    assert view["components"] == [
        {"name": "api", "status": "major_outage"},
        {"name": "web", "status": "operational"},
    ]
    assert [i["id"] for i in view["incidents"]] == [public_id("a"), public_id("b")]
    assert view["history"][0]["resolved_at"] is not None


def test_quiet_page_and_escaping() -> None:
    assert page_view([], [], T0)["status"]["indicator"] == "none"
    html = render_html(
        page_view([record("a", "investigating", {"api": "partial_outage"})], [], T0), "Acme <status>"
    )
    assert "<title>Acme &lt;status&gt;</title>" in html
    assert "API &lt;errors&gt; &amp; timeouts" in html
    assert "<strong>Investigating</strong> - We are investigating reports of &lt;x&gt;." in html
    assert "Partial outage" in html


def test_an_open_incident_of_no_impact_keeps_the_page_operational() -> None:
    """A SEV4 (impact "none", its components operational) published because the severities
    include it said "Service disruption" with the minor banner."""
    sev4 = replace(record("a", "investigating", {"api": "operational"}), impact="none")
    view = page_view([sev4], [], T0)
    assert view["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert [i["id"] for i in view["incidents"]] == [public_id("a")]
    minor = replace(record("b", "investigating", {}), impact="minor")
    assert page_view([sev4, minor], [], T0)["status"]["indicator"] == "minor"


def test_the_public_page_names_incidents_by_ids_of_its_own() -> None:
    """The internal id (which the incident API, the console and Slack know) is not published:
    the page's id is stable from one fetch to the next and tells nothing of the internal one."""
    view = page_view(
        [record("inc_0123456789abcdef", "investigating", {"api": "partial_outage"})], [], T0
    )
    (shown,) = view["incidents"]
    assert shown["id"] == public_id("inc_0123456789abcdef")
    assert shown["id"].startswith("pub_")
    assert "0123456789abcdef" not in shown["id"]
    assert "inc_0123456789abcdef" not in render_html(view, "Acme") + str(view)
    assert public_id("inc_0123456789abcdef") != public_id("inc_0123456789abcdee")
