"""Every Alertmanager fixture (tests/fixtures/alertmanager) is accepted or refused as EXPECTED.md
there says."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, format_group_key, to_records
from models.fingerprint import fingerprint
from tests.conftest import AM_FIXTURES, load_fixture

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

ACCEPTED = sorted(
    p.name
    for p in AM_FIXTURES.glob("*.json")
    if "request_log" not in p.name and "legacy_v3" not in p.name
)


def records_of(name: str):  # type: ignore[no-untyped-def]
    return to_records(WebhookPayload.model_validate(load_fixture(name)), NOW)


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_fixture_gives_one_record_per_alert(name: str) -> None:
    document = load_fixture(name)
    records = records_of(name)
    assert len(records) == len(document["alerts"])
    for record, alert in zip(records, document["alerts"], strict=True):
        assert record.labels == alert["labels"]
        assert record.fingerprint == alert.get("fingerprint", fingerprint(alert["labels"]))
        assert record.receiver == document["receiver"]
        assert record.received_at == NOW
        if "status" in alert:
            assert record.status == alert["status"]


def test_legacy_version_is_refused_naming_version() -> None:
    with pytest.raises(ValidationError) as err:
        WebhookPayload.model_validate(
            load_fixture("inCaller-prometheus_bot__legacy_v3_numeric_groupkey.json")
        )
    fields = {".".join(map(str, e["loc"])) for e in err.value.errors()}
    assert "version" in fields
    assert "groupKey" in fields


def test_truncated_alerts_kept() -> None:
    records = records_of("alertmanager-v0.25.0-captured__firing_max_alerts_truncated.json")
    document = load_fixture("alertmanager-v0.25.0-captured__firing_max_alerts_truncated.json")
    assert document["truncatedAlerts"] > 0
    assert {r.truncated_alerts for r in records} == {document["truncatedAlerts"]}


def test_resolved_status_wins_over_zero_end_time() -> None:
    (record,) = records_of("zulip__resolved_single_alert.json")
    assert record.status == "resolved"


def test_zero_end_time_means_no_end() -> None:
    records = records_of("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    assert all(r.ends_at is None for r in records)
    assert all(r.status == "firing" for r in records)


def test_missing_fingerprint_and_group_key_are_derived() -> None:
    (record,) = records_of("idealista-prom2teams__no_fingerprint_no_groupkey.json")
    assert record.fingerprint == fingerprint(record.labels)
    # No groupLabels either: the alert's own labels form the group.
    assert record.group_key == format_group_key(record.labels)


def test_group_key_derived_from_group_labels_else_alert_labels() -> None:
    document = load_fixture("idealista-prom2teams__diskspace_two_resolved.json")
    assert "groupKey" not in document
    assert "groupLabels" not in document
    records = records_of("idealista-prom2teams__diskspace_two_resolved.json")
    assert [r.group_key for r in records] == [format_group_key(r.labels) for r in records]
    document["groupLabels"] = {"alertname": "DiskSpace"}
    records = to_records(WebhookPayload.model_validate(document), NOW)
    assert {r.group_key for r in records} == {'{}:{alertname="DiskSpace"}'}


def test_missing_status_derived_from_end_time() -> None:
    (record,) = records_of("prometheus-msteams__minimal_no_alert_status.json")
    assert record.status == "firing"
    base = load_fixture("prometheus-msteams__minimal_no_alert_status.json")
    base["alerts"][0]["endsAt"] = (NOW - timedelta(minutes=1)).isoformat()
    (past,) = to_records(WebhookPayload.model_validate(base), NOW)
    assert past.status == "resolved"
    base["alerts"][0]["endsAt"] = (NOW + timedelta(minutes=5)).isoformat()
    (future,) = to_records(WebhookPayload.model_validate(base), NOW)
    assert future.status == "firing"


def test_time_zone_offsets_preserved_as_instants() -> None:
    records = records_of("bougou-alertmanager-webhook-adapter__vmalert_mixed_firing_resolved.json")
    assert records[0].starts_at == datetime(2021, 3, 30, 12, 17, 50, 814674, tzinfo=UTC)
    assert {r.status for r in records} == {"firing", "resolved"}


def test_trailing_spaces_are_data() -> None:
    document = load_fixture("grafana-alertmanager-webhook-proxy__single_firing.json")
    (plain,) = to_records(WebhookPayload.model_validate(document), NOW)
    assert plain.generator_url == document["alerts"][0]["generatorURL"]
    document["alerts"][0]["labels"]["dc"] = "eu-west-1 "
    (spaced,) = to_records(WebhookPayload.model_validate(document), NOW)
    assert spaced.labels["dc"] == "eu-west-1 "
    assert spaced.fingerprint != plain.fingerprint


def test_group_key_format_matches_alertmanager() -> None:
    document = load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    assert format_group_key(document["groupLabels"]) == document["groupKey"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(status="exploded"), "status"),
        (lambda d: d["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda d: d["alerts"][0].update(labels={"a": 1}), "alerts.0.labels.a"),
        (lambda d: d.pop("alerts"), "alerts"),
        (lambda d: d.update(truncatedAlerts=-1), "truncatedAlerts"),
        (lambda d: d["alerts"][0].update(startsAt="2026-01-01T00:00:00"), "alerts.0.startsAt"),
        # Go's time.Time reads RFC 3339 strings only; pydantic alone takes Unix numbers too.
        (lambda d: d["alerts"][0].update(startsAt=1767225600), "alerts.0.startsAt"),
        (lambda d: d["alerts"][0].update(startsAt="1767225600"), "alerts.0.startsAt"),
        (lambda d: d["alerts"][0].update(endsAt=1767225600.5), "alerts.0.endsAt"),
        (lambda d: d["alerts"][0].update(startsAt=None), "alerts.0.startsAt"),
    ],
)
def test_invalid_fields_are_named(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    document = load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    mutate(document)
    with pytest.raises(ValidationError) as err:
        WebhookPayload.model_validate(document)
    assert field in {".".join(map(str, e["loc"])) for e in err.value.errors()}


def base_document() -> dict:  # type: ignore[type-arg]
    return load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(alerts=[]), "alerts"),
        (lambda d: d["alerts"][0].update(labels={}), "alerts.0.labels"),
        (lambda d: d["alerts"][0]["labels"].update({"": "x"}), "alerts.0.labels"),
        (lambda d: d["alerts"][0]["annotations"].update({"": "x"}), "alerts.0.annotations"),
        (lambda d: d.update(truncatedAlerts=2**64), "truncatedAlerts"),
        # Go's decoder refuses these for an integer; pydantic read them as 5, 1 and 1000.
        (lambda d: d.update(truncatedAlerts="5"), "truncatedAlerts"),
        (lambda d: d.update(truncatedAlerts=True), "truncatedAlerts"),
        (lambda d: d.update(truncatedAlerts=1e3), "truncatedAlerts"),
        (lambda d: d.update(version="1", orgId="1"), "orgId"),
        (lambda d: d.update(version=4), "version"),
        (lambda d: d.update(version="5"), "version"),
        (lambda d: d.update(version="1"), "(body)"),
        (lambda d: d.update(alerts=d["alerts"] * 4000), "alerts"),
        (lambda d: d["alerts"][0].update(labels={f"l{i}": "v" for i in range(1001)}), "alerts.0.labels"),
        (lambda d: d["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda d: d.update(receiver=None), "receiver"),
    ],
)
def test_gaps_are_refused_naming_the_field(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    document = base_document()
    mutate(document)
    with pytest.raises(ValidationError) as err:
        WebhookPayload.model_validate(document)
    fields = {".".join(map(str, e["loc"])) or "(body)" for e in err.value.errors()}
    assert field in fields


def test_grafana_alerting_version_1_with_org_id_is_accepted() -> None:
    # Grafana alerting's webhook: Alertmanager's shape, "version": "1", plus its own fields.
    document = base_document()
    document.update(
        version="1", orgId=1, title="[FIRING:3] HighErrorRate", state="alerting", message="..."
    )
    for alert in document["alerts"]:
        alert.update(silenceURL="http://grafana/s", dashboardURL="", values={"A": 1.5})
    records = to_records(WebhookPayload.model_validate(document), NOW)
    assert [r.fingerprint for r in records] == [a["fingerprint"] for a in document["alerts"]]


def test_newer_alertmanager_fields_are_ignored() -> None:
    document = base_document()
    document.update(notification_reason="first notification", routeLabels={"team": "a"})
    assert len(to_records(WebhookPayload.model_validate(document), NOW)) == 3


def test_utf8_label_names_of_prometheus_3_are_accepted() -> None:
    document = base_document()
    document["alerts"][0]["labels"]["service.name"] = "checkout"
    document["alerts"][0].pop("fingerprint")
    (record, *_) = to_records(WebhookPayload.model_validate(document), NOW)
    assert record.fingerprint == fingerprint(record.labels)


@pytest.mark.parametrize("name", ACCEPTED)
def test_records_pass_their_own_validation(name: str) -> None:
    # The record survives its own wire format unchanged (what the worker reads back).
    for record in records_of(name):
        assert AlertRecord.model_validate(record.model_dump()) == record
        assert AlertRecord.from_bytes(record.to_bytes()) == record


def test_lone_surrogates_are_refused_naming_the_field() -> None:
    # From JSON the parser refuses them (400); from Python they must not reach Kafka either.
    document = base_document()
    document["alerts"][1]["labels"]["job"] = "\ud800"
    with pytest.raises(ValidationError, match=r"alerts\.1\.labels\.job: must be valid UTF-8"):
        WebhookPayload.model_validate(document)
    with pytest.raises(ValidationError, match="Invalid JSON"):
        WebhookPayload.model_validate_json(b'{"version": "4", "receiver": "\\udc00"}')


_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_TIMES = st.one_of(
    st.sampled_from(
        ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "8999-12-31T23:59:59.999999+00:00"]
    ),
    st.datetimes(
        min_value=datetime(1969, 12, 31), max_value=datetime(9000, 1, 2), timezones=st.timezones()
    ).map(lambda t: t.isoformat()),
)


def _around(limit: int) -> st.SearchStrategy[str]:
    """Short texts, and texts of about ``limit`` characters (both sides of a length limit)."""
    return st.one_of(_TEXT, st.text(min_size=limit - 2, max_size=limit + 2))


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, object]:
    def maybe(key: str, values: st.SearchStrategy[object]) -> dict[str, object]:
        return {key: draw(values)} if draw(st.booleans()) else {}

    alerts = [
        {
            "labels": draw(st.dictionaries(_TEXT, _TEXT, min_size=1, max_size=4)),
            "startsAt": draw(_TIMES),
            **maybe("annotations", st.dictionaries(_TEXT, _TEXT, max_size=3)),
            **maybe("endsAt", _TIMES),
            **maybe("status", st.sampled_from(["firing", "resolved"])),
            **maybe("generatorURL", _TEXT),
            **maybe("fingerprint", _around(64)),
        }
        for _ in range(draw(st.integers(1, 3)))
    ]
    return {
        "version": "4",
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "receiver": draw(_around(255)),
        "alerts": alerts,
        **maybe("groupKey", _TEXT),
        **maybe("groupLabels", st.dictionaries(_TEXT, _TEXT, max_size=3)),
        **maybe("externalURL", _TEXT),
        **maybe("truncatedAlerts", st.integers(0, 2**64)),
    }


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_payloads())
def test_records_built_without_validation_are_what_validation_builds(
    document: dict[str, object],
) -> None:
    """``to_records`` builds each record trusting the payload's validation: on any payload the
    payload's validation accepts, validating the record's values builds the same record, and
    the same bytes on the wire."""
    try:
        payload = WebhookPayload.model_validate_json(json.dumps(document))
    except ValidationError:
        return  # refused (422): no record is built
    for record in to_records(payload, NOW):
        checked = AlertRecord.model_validate(dict(record.__dict__))
        assert checked == record
        assert checked.to_bytes() == record.to_bytes()
        assert AlertRecord.from_bytes(record.to_bytes()) == record


def test_an_alert_of_every_kind_of_hostile_value_passes_both_ways() -> None:
    """The payload's refusals cover the record's: each hostile value is refused by the payload."""
    for field, value in [
        ("fingerprint", "x" * 65),
        ("fingerprint", "a\x00b"),
        ("generatorURL", "a\x00"),
        ("startsAt", "1969-12-31T23:59:59Z"),
        ("startsAt", "9000-01-01T00:00:00Z"),
        ("endsAt", "1969-12-31T23:59:59Z"),
        ("startsAt", "2026-01-01T00:00:00"),  # no time zone
    ]:
        document = base_document()
        document["alerts"][0][field] = value
        with pytest.raises(ValidationError):
            WebhookPayload.model_validate_json(json.dumps(document))
