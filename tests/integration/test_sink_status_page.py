"""The built-in status page, fed from the real broker, served by sevflow and looked at in headless
Chromium (Debian's ``chromium``); the screenshot is kept in artifacts/ for review."""

import asyncio
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from models.severity import Severity
from testkit.fakes.events import T0, IncidentStory
from testkit.local import REPO
from tests.integration.test_sink_kafka import Running, kafka_settings, produce

pytestmark = pytest.mark.integration

ARTIFACTS = REPO / "artifacts"


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail(
            "chromium not found: install it with scripts/install-deps.sh (Debian package chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="sevflow-chromium-") as profile:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


async def test_builtin_status_page_in_a_browser(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = kafka_settings(
        kafka_bootstrap,
        tmp_path,
        status_page_title="Acme status",
        statuspage_components={"checkout": "Checkout", "search": "Search"},
    )
    down = IncidentStory(
        name="CheckoutDown",
        group="a",
        service="checkout",
        severity=Severity.SEV1,
        summary="checkout-7f9c pods OOMKilled",
        impact="Failed checkouts for all customers.",
        annotations={"summary_public": "Checkout unavailable"},
    )
    slow = IncidentStory(
        name="SearchSlow",
        group="b",
        service="search",
        severity=Severity.SEV2,
        summary="Search latency",
        impact="Slow search results",
    )
    minor = IncidentStory(name="IconsBlurry", group="c", service="web", severity=Severity.SEV4)
    events = down.fire() + slow.fire(at=T0 - timedelta(hours=3)) + minor.fire()
    events += slow.resolve(at=T0 - timedelta(hours=2))
    url = f"http://{settings.status_page_host}:{settings.status_page_port}"
    async with Running(settings) as running:
        await produce(settings, events)

        async def view() -> dict:  # type: ignore[type-arg]
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(f"{url}/api/status.json")).json()  # type: ignore[no-any-return]

        latest: dict = {}  # type: ignore[type-arg]

        async def ready() -> bool:
            nonlocal latest
            running.check()
            try:
                latest = await view()
            except httpx.HTTPError:
                return False
            return len(latest["incidents"]) == 1 and len(latest["history"]) == 1

        for _ in range(200):
            if await ready():
                break
            await asyncio.sleep(0.1)
        assert latest["status"]["indicator"] == "critical"
        (current,) = latest["incidents"]
        assert current["name"] == "Checkout unavailable"
        assert current["updates"][0]["body"] == (
            "We are investigating reports of failed checkouts for all customers. "
            "We will provide an update within 30 minutes."
        )
        assert {c["name"]: c["status"] for c in latest["components"]} == {
            "Checkout": "major_outage",
            "Search": "operational",
        }  # the SEV4 is not published
        assert "OOMKilled" not in str(latest)  # the summary is not public: summary_public is
        (past,) = latest["history"]
        assert past["updates"][0]["body"] == "The issue has been resolved. Search is operating normally."

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "sinks-status-page.png"
        shot.unlink(missing_ok=True)
        result = await asyncio.to_thread(chromium, f"--screenshot={shot}", "--window-size=1280,900", url)
        assert shot.exists(), f"no screenshot: {result.stderr[-2000:]}"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
        dom = await asyncio.to_thread(chromium, "--dump-dom", url)
        assert "Service disruption" in dom.stdout
        assert "reports of failed checkouts for all customers." in dom.stdout
        assert "Major outage" in dom.stdout
