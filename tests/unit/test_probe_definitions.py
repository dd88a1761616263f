"""Verification probes chosen by matchers, read from the verify file and the rules file with
their lines; a result applies only to the quiet period it was taken in, whatever the runner's
clock says."""

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.incident import expire_quiet_period
from models.probe_file import ProbeFileError, parse_probe_file
from models.verification import ProbeResult, ProbeSet, apply_probe_result, parse_probes
from streams.probes import load_probes
from streams.rules import load_rules
from tests.builders import T0
from tests.unit.test_verification import POLICY, PROBE, QUIET, quiet_incident, result

RULES = """\
rules:
  - name: down
    severity: SEV1
    matchers: ['alertname=~".*Down"']
probes:
  - matchers: ['service=~"api|web"', 'team="payments"']
    http_url: https://payments.example.com/health
  - service: api
    http_url: https://api.example.com/health
  - matchers: ['severity="SEV1"']
    promql: up == 1
    prometheus_url: http://10.0.0.9:9090
"""


def test_probes_are_chosen_by_matchers_service_by_service_first_match_wins(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    load_rules(rules)  # the severity rules still parse with probes in the file
    probes = load_probes("", None, rules)
    payments = probes.choose(["web"], "payments", "SEV2")
    assert payments.probe is not None
    assert payments.probe.http_url == "https://payments.example.com/health"
    other = probes.choose(["db", "api"], "storage", "SEV2")
    assert other.probe is not None
    assert (other.service, other.probe.http_url) == ("api", "https://api.example.com/health")
    assert other.tried[0] == ('service=~"api|web", team="payments"', 'service=~"api|web" (service db)')
    assert probes.choose(["db"], "storage", "SEV1").probe.promql == "up == 1"  # type: ignore[union-attr]
    assert probes.choose([], "storage", "SEV3").probe is None
    incident = quiet_incident()  # service api, team default
    assert probes.for_incident(incident).http_url == "https://api.example.com/health"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("probes", "line", "problem"),
    [
        (
            "  - matchers: ['alertname=\"X\"']\n    http_url: https://x.example/h\n",
            6,
            "not alert labels",
        ),
        (
            "  - service: api\n    http_url: https://x.example/h\n  - service: db\n    promql: up\n",
            8,
            "go together",
        ),
        (
            "  - matchers: ['service=~\"(\"']\n    http_url: https://x.example/h\n",
            6,
            "bad regular expression",
        ),
        (
            "  - service: api\n    http_url: https://x.example/h\n    timeout: 3\n",
            8,
            "unknown field 'timeout'",
        ),
        ("  - service: api\n    http_url: http://api.example.com/h\n", 6, "plain http"),
    ],
)
def test_a_bad_probe_in_the_rules_file_fails_naming_file_and_line(
    tmp_path: Path, probes: str, line: int, problem: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.split("probes:\n")[0] + "probes:\n" + probes)
    with pytest.raises(ProbeFileError) as error:
        load_probes("", None, rules)
    assert str(error.value).startswith(f"{rules}:{line}: probe #")
    assert problem in str(error.value)


def test_the_verify_file_takes_yaml_or_json_with_lines_and_two_probes_for_the_same_fail() -> None:
    assert (
        len(parse_probe_file('[{"service": "api", "http_url": "https://a.example/h"}]', "v.json")) == 1
    )
    with pytest.raises(ProbeFileError, match=r"^v.yaml:3: probe #2: a probe needs a service"):
        parse_probe_file(
            "- service: api\n  http_url: https://a.example/h\n- http_url: https://b/h\n", "v.yaml"
        )
    with pytest.raises(ProbeFileError, match=r"^v.yaml:1: expected a list of probes"):
        parse_probe_file("service: api\n", "v.yaml")
    twice = parse_probes('[{"service": "api", "http_url": "https://a.example/h"}]').probes()
    with pytest.raises(ValueError, match='two probes for service="api"'):
        ProbeSet([*twice, *twice])
    with pytest.raises(ValidationError):
        parse_probes('[{"matchers": ["instance=\\"x\\""], "http_url": "https://a.example/h"}]')


# --- which quiet period a result belongs to, under a skewed runner clock ----------------------


def test_a_result_from_a_runner_clock_ahead_never_applies_to_a_later_quiet_period() -> None:
    first = quiet_incident()  # quiet since T0 + 1m (record time)
    assert first.quiet_since == T0 + timedelta(minutes=1)
    # The runner's clock is 10 minutes ahead: its pass, taken in the first quiet period, says
    # T0 + 12m. Meanwhile the alert fired again and resolved at T0 + 4m: a second quiet period.
    skewed = ProbeResult.of(
        first.id, first.flaps, PROBE, True, "", T0 + timedelta(minutes=12), first.quiet_since
    )
    second = first.model_copy(update={"quiet_since": T0 + timedelta(minutes=4)})
    assert apply_probe_result(second, skewed, QUIET) is None
    # Without the quiet period named (records of before), the time rule would have taken it.
    unnamed = result(first, True, T0 + timedelta(minutes=12))
    assert apply_probe_result(second, unnamed, QUIET) is not None
    # In its own quiet period it counts.
    outcome = apply_probe_result(first, skewed, QUIET)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.verified_at == T0 + timedelta(minutes=12)


def test_a_result_from_a_runner_clock_behind_counts_from_its_quiet_periods_start() -> None:
    incident = quiet_incident()  # quiet since T0 + 1m
    behind = T0 - timedelta(minutes=5)  # the runner's clock is minutes behind record time
    passed = ProbeResult.of(incident.id, incident.flaps, PROBE, True, "", behind, incident.quiet_since)
    outcome = apply_probe_result(incident, passed, QUIET)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.verified_at == incident.quiet_since
    resolved = expire_quiet_period(outcome.incident, POLICY, T0 + timedelta(minutes=6), verify=True)
    assert resolved is not None  # quiet period (record time) over, a pass in it: resolves
    failed = ProbeResult.of(
        incident.id, incident.flaps, PROBE, False, "503", behind, incident.quiet_since
    )
    watched = apply_probe_result(incident, failed, QUIET)
    assert watched is not None
    assert watched.incident is not None
    assert watched.incident.quiet_since == incident.quiet_since  # never moved back in time
    assert watched.incident.monitoring


def test_explain_names_the_probe_an_incident_of_the_alert_would_be_verified_by(tmp_path: Path) -> None:
    from models.settings import Settings
    from sevflow.explain import explain
    from testkit.store_backends import fresh_database

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    configured = Settings(data_dir=tmp_path, rules_file=rules)
    fresh_database(configured.sqlalchemy_url())
    text = explain(configured, {"alertname": "ApiLatency", "service": "api"}, {}, None, now=T0)
    assert 'verified:  by probe GET https://api.example.com/health (service="api")\n' in text
    assert '  skipped  probe service=~"api|web", team="payments": team="payments"' in text
    down = explain(configured, {"alertname": "DbDown", "service": "db"}, {}, None, now=T0)
    assert '(severity="SEV1")' in down
    none = explain(configured, {"alertname": "Slow", "job": "batch"}, {}, None, now=T0)
    assert "verified:  by no probe" in none
    assert "verified" not in explain(Settings(data_dir=tmp_path), {"alertname": "X"}, {}, None, now=T0)
