"""The incident page's links to where the incident lives elsewhere: its Slack channel, its
PagerDuty incident, its status-page incident. Built from what the sinks recorded in the delivery
log's references (the Slack channel id and name, the Statuspage incident id) and from settings;
only ``http://`` and ``https://`` URLs are ever produced (the template escapes them). Pure.

- Slack: ``<SEVFLOW_UI_SLACK_WORKSPACE_URL>/archives/<channel id>`` (Slack's permalink form for a
  channel); without the setting, the channel's name as text.
- PagerDuty: the Events API v2 gives back no incident URL and its contract documents no web
  address by ``dedup_key`` (/work/shared/contracts/README.md, "PagerDuty"), so the link is the
  account's incident list (``https://<SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN>.pagerduty.com/incidents``)
  with the dedup key to search for beside it.
- Status page: Atlassian Statuspage's manage page of the incident
  (``https://manage.statuspage.io/pages/<page id>/incidents/<incident id>``), or the built-in
  page's public URL (``SEVFLOW_UI_STATUS_PAGE_URL``).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from models.pagerduty_keys import incident_key
from models.web_links import web_url

__all__ = ["Link", "LinkSettings", "incident_links", "web_url"]

#: sinks/statuspage.py's reference names (the sinks are another role: not imported here).
_STATUSPAGE_INCIDENT = "page_incident_id"


@dataclass(frozen=True)
class LinkSettings:
    """Where the vendors' web pages are (all optional)."""

    slack_workspace_url: str | None = None
    pagerduty_subdomain: str | None = None
    statuspage_page_id: str | None = None
    status_page_url: str | None = None


@dataclass(frozen=True)
class Link:
    """``url`` None: only the text is known (e.g. the channel name without a workspace URL)."""

    kind: str
    text: str
    url: str | None
    detail: str = ""


def incident_links(
    incident_id: str,
    refs: Mapping[str, Mapping[str, str]],
    sent: Mapping[str, int],
    settings: LinkSettings,
) -> list[Link]:
    """The links for the incident: ``refs`` per sink (the delivery log's references of the
    incident), ``sent`` the confirmed steps per sink (PagerDuty and the built-in page record no
    reference of their own)."""
    links: list[Link] = []
    slack = refs.get("slack", {})
    if slack.get("channel_id"):
        name = slack.get("channel_name") or slack["channel_id"]
        base = web_url(settings.slack_workspace_url)
        url = f"{base.rstrip('/')}/archives/{quote(slack['channel_id'], safe='')}" if base else None
        links.append(Link("slack", f"Slack #{name.lstrip('#')}", url))
    if sent.get("pagerduty") and settings.pagerduty_subdomain:
        url = web_url(f"https://{quote(settings.pagerduty_subdomain, safe='')}.pagerduty.com/incidents")
        key = incident_key(incident_id)
        links.append(Link("pagerduty", "PagerDuty incidents", url, f"dedup key {key}"))
    page_incident = refs.get("statuspage", {}).get(_STATUSPAGE_INCIDENT)
    if page_incident and settings.statuspage_page_id:
        page, ref = (quote(v, safe="") for v in (settings.statuspage_page_id, page_incident))
        url = web_url(f"https://manage.statuspage.io/pages/{page}/incidents/{ref}")
        links.append(Link("statuspage", "Statuspage incident", url))
    elif sent.get("statuspage") and web_url(settings.status_page_url):
        links.append(Link("statuspage", "Status page", web_url(settings.status_page_url)))
    return links
