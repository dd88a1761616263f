from pathlib import Path

import pytest

from models.fingerprint import fingerprint
from tests.conftest import AM_FIXTURES, load_fixture

CAPTURED = sorted(p.name for p in AM_FIXTURES.glob("alertmanager-v0.25.0-captured__*.json"))
CAPTURED_PAYLOADS = [n for n in CAPTURED if "request_log" not in n]


@pytest.mark.parametrize("name", CAPTURED_PAYLOADS)
def test_matches_real_alertmanager(name: str) -> None:
    payload = load_fixture(name)
    assert payload["alerts"], name
    for alert in payload["alerts"]:
        assert fingerprint(alert["labels"]) == alert["fingerprint"]


def test_empty_label_set_is_fnv_offset_basis() -> None:
    # prometheus/common: an empty label set hashes to the FNV-1a 64 offset basis.
    assert fingerprint({}) == "cbf29ce484222325"


def test_order_independent_and_value_sensitive() -> None:
    a = fingerprint({"alertname": "X", "job": "api"})
    assert a == fingerprint({"job": "api", "alertname": "X"})
    assert a != fingerprint({"alertname": "X", "job": "api2"})
    # The separator keeps name/value boundaries apart.
    assert fingerprint({"ab": "c"}) != fingerprint({"a": "bc"})


def test_captured_fixtures_present() -> None:
    assert len(CAPTURED_PAYLOADS) >= 6, f"fixtures missing under {Path(AM_FIXTURES)}"
