"""The operator console in a real Chromium (Debian's chromium through chromedriver, no download)
over a running sevflow whose sinks talk to the vendor fakes, with an alert fired through the real
Alertmanager.

Screenshots land in the test's directory; with ``SEVFLOW_CONSOLE_SCREENSHOTS=<dir>`` they are
copied there too (``docs/`` holds the ones the README shows).
"""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit import harness
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.harness import alertmanager_for, running, sevflow_at_fakes, wait_for

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()),
        reason="needs Debian's chromium and chromium-driver (scripts/install-deps.sh)",
    ),
]

fake_pagerduty = fixtures.fake_pagerduty
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert
slack = harness.realtime_slack

LABELS = {"alertname": "CheckoutDown", "service": "api", "severity": "critical"}
READ_TOKEN = uuid.uuid4().hex
WRITE_TOKEN = uuid.uuid4().hex


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[], WebDriver]]:
    """``open_browser()``: a new headless Chromium (its own profile); all quit at the end."""
    started: list[WebDriver] = []

    def open_browser() -> WebDriver:
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        profile = tmp_path / f"profile-{len(started)}"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
        ):
            options.add_argument(flag)
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(tmp_path / "downloads")}
        )
        driver = webdriver.Chrome(
            service=Service(executable_path="/usr/bin/chromedriver"), options=options
        )
        driver.set_page_load_timeout(30)
        started.append(driver)
        return driver

    yield open_browser
    for driver in started:
        driver.quit()


def sign_in(driver: WebDriver, base: str, token: str, path: str = "/ui/incidents") -> None:
    driver.get(f"{base}{path}")
    assert "/ui/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: "/ui/login" not in driver.current_url, 15, "the signed-in page")


def text_of(driver: WebDriver, element_id: str) -> str:
    """The element's text now; "" while the live view is replacing it (the element found is gone
    before its text is read), so a poll reads it again."""
    try:
        return str(driver.find_element(By.ID, element_id).text)
    except StaleElementReferenceException:
        return ""


def shot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    target = os.environ.get("SEVFLOW_CONSOLE_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / name)
    return path


def test_console_journey_in_chromium(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    browsers: Callable[[], WebDriver],
) -> None:
    sevflow = sevflow_at_fakes(
        tmp_path, kafka_bootstrap, fake_pagerduty, slack, fake_statuspage, tls_cert
    )
    sevflow.extra_env["SEVFLOW_API_TOKENS"] = (
        f"e2e:read,write,admin:{sevflow.api_token},viewer:read:{READ_TOKEN},"
        f"oncall:read,write:{WRITE_TOKEN}"
    )
    sevflow.extra_env["SEVFLOW_UI_SLACK_WORKSPACE_URL"] = "https://acme.slack.com"
    sevflow.extra_env["SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN"] = "acme"
    alertmanager = alertmanager_for(sevflow, tmp_path)
    with running(sevflow, alertmanager):
        base = sevflow.url
        alertmanager.amtool(
            "alert",
            "add",
            *[f"{k}={v}" for k, v in LABELS.items()],
            "--annotation=summary=Checkout is down",
        )
        wait_for(lambda: fake_pagerduty.actions(), 120, f"the page (log {sevflow.log_path})")
        incident_id = str(fake_pagerduty.events[0]["dedup_key"])

        # A read token: the list and the incident, no action buttons.
        viewer = browsers()
        sign_in(viewer, base, READ_TOKEN)
        Select(viewer.find_element(By.NAME, "severity")).select_by_value("SEV1")
        viewer.find_element(By.ID, "apply-filters").click()
        wait_for(lambda: "severity=SEV1" in viewer.current_url, 10, "the filtered URL")
        rows = viewer.find_elements(By.CSS_SELECTOR, "#incident-list tr[data-incident]")
        assert [r.get_attribute("data-incident") for r in rows] == [incident_id]
        assert "< 15 min" in rows[0].text
        viewer.find_element(By.LINK_TEXT, "Checkout is down").click()
        wait_for(lambda: incident_id in viewer.current_url, 10, "the incident page")
        assert viewer.find_elements(By.ID, "acknowledge") == []
        assert viewer.find_element(By.ID, "state").text == "triggered"

        # A write token in a second browser acknowledges.
        oncall = browsers()
        sign_in(oncall, base, WRITE_TOKEN, f"/ui/incidents/{incident_id}")
        shot(oncall, tmp_path, "console-incident.png")
        oncall.find_element(By.ID, "acknowledge").click()
        wait_for(
            lambda: fake_pagerduty.actions(incident_id) == ["trigger", "acknowledge"],
            60,
            f"PagerDuty's acknowledgement (log {sevflow.log_path})",
        )
        # The reader's page shows it without a reload (polling), with who acknowledged.
        wait_for(
            lambda: text_of(viewer, "state") == "acknowledged",
            30,
            "the acknowledgement on the other browser",
        )
        assert viewer.find_element(By.ID, "lead").text == "oncall"
        timeline = viewer.find_element(By.ID, "timeline").text
        assert "acknowledged by oncall" in timeline
        assert "Nobody else is paged" in viewer.find_element(By.ID, "live").text

        # A note from the on-call's browser: the reader sees it without a reload, Slack posts it.
        oncall.get(f"{base}/ui/incidents/{incident_id}")
        oncall.find_element(By.ID, "note-text").send_keys("rolled back <b>checkout</b>")
        oncall.find_element(By.ID, "add-note-button").click()
        wait_for(
            lambda: "rolled back <b>checkout</b>" in text_of(viewer, "timeline"),
            30,
            f"the note on the other browser (log {sevflow.log_path})",
        )
        channel = wait_for(lambda: slack.created(), 30, "the incident channel")[0]
        wait_for(
            lambda: [p for p in slack.posts(channel) if p["text"].startswith(":memo:")],
            60,
            "the note in the Slack channel",
        )

        # The links to the Slack channel, PagerDuty and the Statuspage incident, as http(s) links.
        def links() -> dict[str, str]:
            found = viewer.find_elements(By.CSS_SELECTOR, "#links li[data-link] a")
            return {
                str(a.find_element(By.XPATH, "..").get_attribute("data-link")): str(
                    a.get_attribute("href")
                )
                for a in found
            }

        shown = wait_for(lambda: len(links()) == 3 and links(), 30, "the three links")
        assert shown["slack"].startswith("https://acme.slack.com/archives/C")
        assert shown["pagerduty"] == "https://acme.pagerduty.com/incidents"
        assert shown["statuspage"].startswith("https://manage.statuspage.io/pages/")

        # Resolve with root cause and fix: the Slack resolution carries them.
        oncall.get(f"{base}/ui/incidents/{incident_id}")
        oncall.find_element(By.ID, "root_cause").send_keys("a bad deploy of checkout")
        oncall.find_element(By.ID, "fix").send_keys("rolled back to v41")
        oncall.find_element(By.ID, "resolve").click()

        def resolution() -> str | None:
            for post in slack.posts(channel):
                if post["text"].startswith(":white_check_mark:"):
                    return str(post["text"])
            return None

        text = wait_for(resolution, 60, f"the Slack resolution (log {sevflow.log_path})")
        assert "a bad deploy of checkout" in text
        assert "rolled back to v41" in text
        wait_for(lambda: text_of(oncall, "state") == "resolved", 30, "the resolved state")

        # The postmortem downloads as Markdown.
        oncall.find_element(By.ID, "postmortem").click()
        download = tmp_path / "downloads" / f"postmortem-{incident_id}.md"
        wait_for(download.exists, 20, "the downloaded postmortem")
        assert download.read_text().startswith("# Incident Postmortem: Checkout is down")

        # Screenshots: the list, the analytics, and the incident on a phone-sized screen.
        oncall.get(f"{base}/ui/incidents")
        shot(oncall, tmp_path, "console-list.png")
        oncall.get(f"{base}/ui/analytics")
        assert len(oncall.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3
        shot(oncall, tmp_path, "console-analytics.png")
        oncall.set_window_size(390, 844)
        oncall.get(f"{base}/ui/incidents/{incident_id}")
        width = oncall.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px screen"
        shot(oncall, tmp_path, "console-incident-phone.png")


def test_a_hostile_label_shows_as_text_in_the_browser(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    browsers: Callable[[], WebDriver],
) -> None:
    sevflow = sevflow_at_fakes(
        tmp_path, kafka_bootstrap, fake_pagerduty, slack, fake_statuspage, tls_cert
    )
    sevflow.extra_env["SEVFLOW_API_TOKENS"] = f"viewer:read:{READ_TOKEN}"
    alertmanager = alertmanager_for(sevflow, tmp_path)
    hostile = "<script>document.title='owned'</script>"
    with running(sevflow, alertmanager):
        alertmanager.amtool(
            "alert",
            "add",
            "alertname=Hostile",
            "service=api",
            "severity=critical",
            f"team={hostile}",
            "--annotation=summary=Hostile label",
        )
        wait_for(lambda: fake_pagerduty.actions(), 120, f"the page (log {sevflow.log_path})")
        incident_id = str(fake_pagerduty.events[0]["dedup_key"])
        driver = browsers()
        sign_in(driver, sevflow.url, READ_TOKEN, f"/ui/incidents/{incident_id}")
        assert f"team={hostile}" in driver.find_element(By.ID, "alerts").text
        assert driver.title != "owned"
        assert driver.find_elements(By.XPATH, "//script[contains(., 'owned')]") == []
