"""Teams end to end (README "Teams"): a real Alertmanager routes two teams by their ``team``
label and one by its own receiver; ``sevflow run`` with a teams file pages each incident on its
team's routing key (the PagerDuty fake records it), announces it in its team's channel and shows
its team's components, an unmatched alert goes to the default team, ``sevflow report --team``
counts one team's incidents, an incident escalates along its team's own policy (its secondary
paged on that policy's routing key while the default team's incident waits for its 15 minutes),
and a bad teams file stops the start naming its line.
"""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit import harness
from testkit.fakes import fixtures
from testkit.fakes.fixtures import ROUTING_KEY, SP_KEY, SP_PAGE
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.harness import Alertmanager, Sevflow, running, sevflow_at_fakes, wait_for
from testkit.local import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert
slack = harness.realtime_slack

PAYMENTS_KEY = "PAYMENTSKEY0123456789abcdefABCDE"
SEARCH_KEY = "SEARCHKEY00123456789abcdefABCDEF"
STORAGE_KEY = "STORAGEKEY0123456789abcdefABCDEF"

TEAMS = """\
teams:
  - name: payments
    matchers: ['team="payments"']
    routing_key: {env: PAYMENTS_PD_KEY}
    announce_channel: payments-incidents
    status_page_components: {checkout: cmppay000001}
  - name: search
    matchers: ['team="search"']
    routing_key: {file: SEARCH_KEY_FILE}
    announce_channel: search-incidents
    status_page_components: {search: cmpsrc000001}
  - name: storage
    matchers: ['receiver="storage-pager"']
    routing_key: {env: STORAGE_PD_KEY}
    announce_channel: storage-incidents
    status_page_components: {storage: cmpsto000001}
"""


@dataclass
class RoutedAlertmanager(Alertmanager):
    """Alertmanager with a route per team: payments and search by their ``team`` label (one
    receiver, sevflow's), storage by a receiver of its own that notifies the same webhook."""

    def config(self) -> str:
        webhook = f"""\
    webhook_configs:
      - url: {self.webhook_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {self.token}
"""
        return f"""\
route:
  receiver: sevflow
  group_by: ['alertname']
  group_wait: {self.group_wait}
  group_interval: {self.group_interval}
  repeat_interval: 1h
  routes:
    - matchers: ['team="payments"']
      receiver: sevflow
    - matchers: ['team="search"']
      receiver: sevflow
    - matchers: ['service="storage"']
      receiver: storage-pager
receivers:
  - name: sevflow
{webhook}  - name: storage-pager
{webhook}"""


@pytest.fixture
def statuspage() -> Iterator[FakeStatuspage]:
    components = ["cmpapi000001", "cmppay000001", "cmpsrc000001", "cmpsto000001"]
    fake = FakeStatuspage(SP_KEY, SP_PAGE, components).start()
    yield fake
    fake.close()


def with_teams(sevflow: Sevflow, tmp_path: Path, text: str = TEAMS) -> Path:
    key_file = tmp_path / "search.key"
    key_file.write_text(SEARCH_KEY + "\n")
    path = tmp_path / "teams.yaml"
    path.write_text(text.replace("SEARCH_KEY_FILE", str(key_file)))
    sevflow.extra_env.update(
        SEVFLOW_TEAMS_FILE=str(path), PAYMENTS_PD_KEY=PAYMENTS_KEY, STORAGE_PD_KEY=STORAGE_KEY
    )
    return path


def cli(sevflow: Sevflow, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *argv],
        cwd=REPO,
        env=sevflow.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


ALERTS = {
    # summary: labels
    "Payments down": {"alertname": "PaymentsDown", "team": "payments", "service": "checkout"},
    "Search down": {"alertname": "SearchDown", "team": "search", "service": "search"},
    "Storage down": {"alertname": "StorageDown", "service": "storage"},
    "Api down": {"alertname": "ApiDown", "service": "api"},
}


def test_each_team_is_paged_announced_and_shown_as_its_own(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> None:
    for channel in ("payments-incidents", "search-incidents", "storage-incidents"):
        slack.add_channel(channel)
    sevflow = sevflow_at_fakes(tmp_path, kafka_bootstrap, fake_pagerduty, slack, statuspage, tls_cert)
    with_teams(sevflow, tmp_path)
    alertmanager = RoutedAlertmanager(
        tmp_path, f"{sevflow.url}/webhooks/alertmanager", token=sevflow.token
    )
    with running(sevflow, alertmanager):
        for summary, labels in ALERTS.items():
            alertmanager.amtool(
                "alert",
                "add",
                *[f"{k}={v}" for k, v in {**labels, "severity": "critical"}.items()],
                f"--annotation=summary={summary}",
            )

        def paged() -> dict[str, str] | None:
            keys = {a.summary.split("] ", 1)[-1]: a.routing_key for a in fake_pagerduty.alerts}
            return keys if len(keys) == len(ALERTS) else None

        keys = wait_for(paged, 90, f"four pages (log {sevflow.log_path})")
        assert keys == {
            "Payments down": PAYMENTS_KEY,
            "Search down": SEARCH_KEY,
            "Storage down": STORAGE_KEY,
            "Api down": ROUTING_KEY,  # no team matches: the default team, today's key
        }

        def announced() -> dict[str, list[str]] | None:
            channels = ("payments-incidents", "search-incidents", "storage-incidents", "incidents")
            posts = {c: [p["text"] for p in slack.posts(c)] for c in channels}
            return posts if all(posts.values()) else None

        posts = wait_for(announced, 60, "the four announcements")
        for channel, summary in [
            ("payments-incidents", "Payments down"),
            ("search-incidents", "Search down"),
            ("storage-incidents", "Storage down"),
            ("incidents", "Api down"),
        ]:
            assert len(posts[channel]) == 1, posts
            assert summary in posts[channel][0]

        def shown() -> dict[str, list[str]] | None:
            created = {
                w["metadata"]["sevflow"]["incident_id"]: w["component_ids"]
                for method, w in statuspage.writes
                if method == "POST"
            }
            return created if len(created) == len(ALERTS) else None

        components = sorted(map(tuple, wait_for(shown, 60, "four status page incidents").values()))
        assert components == [
            ("cmpapi000001",),
            ("cmppay000001",),
            ("cmpsrc000001",),
            ("cmpsto000001",),
        ]

        listed = cli(sevflow, "incidents", "list", "--team", "storage")
        assert listed.returncode == 0, listed.stderr
        assert "Storage down" in listed.stdout
        assert "Payments down" not in listed.stdout
        report = cli(sevflow, "report", "--team", "payments")
        assert report.returncode == 0, report.stderr
        total = next(line for line in report.stdout.splitlines() if line.startswith("ALL"))
        assert total.split()[2] == "1"  # one incident: the payments team's only
        everything = cli(sevflow, "report")
        assert next(x for x in everything.stdout.splitlines() if x.startswith("ALL")).split()[2] == "4"


PAYMENTS_SECONDARY_KEY = "PAYSECONDARY0123456789abcdefABCD"

PAYMENTS_ESCALATION = """\
levels:
  - {name: payments primary, after: 0s, targets: [{kind: pagerduty, to: primary}]}
  - {name: payments secondary, after: 2s, targets: [{kind: pagerduty, to: payments-secondary}]}
  - {name: payments again, after: 4s, again: true, targets: [{kind: pagerduty, to: primary}]}
"""


def test_an_incident_escalates_along_its_teams_policy(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> None:
    """payments' own policy file (next to the teams file) pages its secondary 2 s after the
    opening on the secondary's routing key; the default team's incident, opened with it, follows
    the playbook (secondary after 15 minutes): nothing of it escalates meanwhile."""
    slack.add_channel("payments-incidents")
    sevflow = sevflow_at_fakes(
        tmp_path,
        kafka_bootstrap,
        fake_pagerduty,
        slack,
        statuspage,
        tls_cert,
        escalation_interval_seconds="0.5",
        escalation_pagerduty_routing_keys=f"payments-secondary={PAYMENTS_SECONDARY_KEY}",
    )
    (tmp_path / "payments-escalation.yaml").write_text(PAYMENTS_ESCALATION)
    teams = TEAMS.replace(
        "    announce_channel: payments-incidents\n",
        "    announce_channel: payments-incidents\n"
        "    escalation: {policy_file: payments-escalation.yaml}\n",
    )
    with_teams(sevflow, tmp_path, teams)
    alertmanager = RoutedAlertmanager(
        tmp_path, f"{sevflow.url}/webhooks/alertmanager", token=sevflow.token
    )
    with running(sevflow, alertmanager):
        for summary in ("Payments down", "Api down"):
            alertmanager.amtool(
                "alert",
                "add",
                *[f"{k}={v}" for k, v in {**ALERTS[summary], "severity": "critical"}.items()],
                f"--annotation=summary={summary}",
            )

        def paged() -> dict[str, str] | None:
            keys = {a.summary.split("] ", 1)[-1]: a.routing_key for a in fake_pagerduty.alerts}
            return keys if len(keys) == 2 else None

        primaries = wait_for(paged, 90, f"two pages (log {sevflow.log_path})")
        assert primaries == {"Payments down": PAYMENTS_KEY, "Api down": ROUTING_KEY}

        def escalation_pages() -> dict[str, dict[str, str]] | None:
            pages = {
                e["dedup_key"].split("/escalation/", 1)[1]: e
                for e in fake_pagerduty.events
                if "/escalation/" in e["dedup_key"]
            }
            return pages if len(pages) >= 2 else None

        pages = wait_for(escalation_pages, 60, "the payments secondary, then everyone again")
        assert {ref: page["routing_key"] for ref, page in pages.items()} == {
            "payments-secondary": PAYMENTS_SECONDARY_KEY,  # its level's own service
            "primary/again": PAYMENTS_KEY,  # the incident's own service: the team's
        }
        assert all("Payments down" in p["payload"]["summary"] for p in pages.values())
        # the default team's incident follows the playbook: its secondary is 15 minutes away
        assert len(escalation_pages() or {}) == 2


@pytest.mark.parametrize(
    ("change", "line", "problem"),
    [
        (
            ("routing_key: {env: PAYMENTS", "pagerduty_key: {env: PAYMENTS"),
            4,
            "unknown field 'pagerduty_key'",
        ),
        (("""team="search\"""", 'team=~"(search"'), 8, "bad matcher"),
    ],
)
def test_a_bad_teams_file_stops_the_start_naming_its_line(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    change: tuple[str, str],
    line: int,
    problem: str,
) -> None:
    sevflow = sevflow_at_fakes(tmp_path, kafka_bootstrap, fake_pagerduty, slack, statuspage, tls_cert)
    path = with_teams(sevflow, tmp_path, TEAMS.replace(*change))
    started = cli(sevflow, "run")
    assert started.returncode == 2
    assert f"{path}:{line}: " in started.stderr
    assert problem in started.stderr
