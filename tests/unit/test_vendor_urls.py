"""Every vendor base URL is https: plain http is refused at start, naming the setting, unless
SEVFLOW_ALLOW_INSECURE_VENDOR_URLS=1 (tests' loopback fakes), which is accepted with a warning."""

import pytest
from pydantic import ValidationError

from models.settings import Settings
from tests.unit.test_cli import run_cli

INSECURE = {
    "slack_base_url": "http://127.0.0.1:9/api/",
    "statuspage_base_url": "http://127.0.0.1:9/v1",
}


@pytest.mark.parametrize("name", sorted(INSECURE))
def test_plain_http_vendor_url_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ValidationError, match=f"SEVFLOW_{name.upper()}") as raised:
        Settings(**{name: INSECURE[name]})
    assert "https" in str(raised.value)
    assert "SEVFLOW_ALLOW_INSECURE_VENDOR_URLS" in str(raised.value)


@pytest.mark.parametrize("name", sorted(INSECURE))
def test_plain_http_vendor_url_is_accepted_with_the_flag(name: str) -> None:
    settings = Settings(**{name: INSECURE[name], "allow_insecure_vendor_urls": True})
    assert getattr(settings, name) == INSECURE[name]
    assert settings.insecure_vendor_urls() == [f"SEVFLOW_{name.upper()}"]


def test_https_and_other_schemes() -> None:
    assert Settings().insecure_vendor_urls() == []
    # Not http either: an ftp:// or schemeless URL is no https URL.
    for url in ("ftp://slack.example/api/", "slack.example/api/", "HTTP://slack.example/api/"):
        with pytest.raises(ValidationError, match="SEVFLOW_SLACK_BASE_URL"):
            Settings(slack_base_url=url)
    assert Settings(slack_base_url="HTTPS://slack.example/api/").insecure_vendor_urls() == []


def test_pagerduty_base_url_stays_https_even_with_the_flag() -> None:
    # The PagerDuty client itself refuses anything but https; tests reach an https fake.
    with pytest.raises(ValidationError, match="https"):
        Settings(pagerduty_base_url="http://127.0.0.1:9", allow_insecure_vendor_urls=True)


@pytest.mark.parametrize("name", sorted(INSECURE))
def test_cli_refuses_to_start_with_a_clear_message(name: str) -> None:
    env = {"PATH": "", f"SEVFLOW_{name.upper()}": INSECURE[name]}
    result = run_cli("schema", env=env)
    assert result.returncode != 0
    assert f"SEVFLOW_{name.upper()}" in result.stderr
    assert "must be https" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_starts_with_the_flag_and_warns() -> None:
    env = {
        "PATH": "",
        "SEVFLOW_SLACK_BASE_URL": INSECURE["slack_base_url"],
        "SEVFLOW_ALLOW_INSECURE_VENDOR_URLS": "1",
    }
    result = run_cli("schema", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr
    assert "SEVFLOW_SLACK_BASE_URL" in result.stderr
    assert "plain http" in result.stderr
