"""The worker reads its input records the quick way (pydantic's JSON parser into the model) and
falls back to the careful reading (``json.loads``, the version, then the model) only when the
quick one fails (streams/records.py). The two must never disagree: whatever a record holds, the
decoding is what the careful reading alone gives, accepted or refused with the same words."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.alert import ALERT_SCHEMA_VERSION, AlertRecord
from models.incident import COMMAND_SCHEMA_VERSION, Command
from models.verification import PROBE_RESULT_SCHEMA_VERSION, ProbeResult
from streams.records import Decoded, _decode, _read
from tests.builders import T0, alert, command

_KINDS: list[tuple[str, type[Any], int, bytes]] = [
    ("alert record", AlertRecord, ALERT_SCHEMA_VERSION, alert(instance="a").to_bytes()),
    ("command", Command, COMMAND_SCHEMA_VERSION, command("inc_1", at=T0).model_dump_json().encode()),
    (
        "probe result",
        ProbeResult,
        PROBE_RESULT_SCHEMA_VERSION,
        ProbeResult.of("inc_1", 0, "api", True, "ok", T0, T0 - timedelta(minutes=1)).to_bytes(),
    ),
]


def _same(raw: bytes | None, model: type[Any], supported: int, what: str) -> Decoded[Any]:
    quick, careful = _decode(raw, model, supported, what), _read(raw, model, supported, what)
    assert quick == careful, raw
    return quick


def _with(valid: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    document = json.loads(valid)
    change(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize(("what", "model", "supported", "valid"), _KINDS)
def test_a_valid_record_reads_the_same_both_ways(
    what: str, model: type[Any], supported: int, valid: bytes
) -> None:
    decoded = _same(valid, model, supported, what)
    assert decoded.record == model.model_validate_json(valid)


@pytest.mark.parametrize(("what", "model", "supported", "valid"), _KINDS)
@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"null",
        b"[]",
        b'"text"',
        b"{",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
        b'{"schema_version": NaN}',
        b'{"schema_version": 1e400}',
        b'{"schema_version": 99999999999999999999999999}',
        b"[" * 100_000,
        b'{"labels": ' * 100_000,
    ],
)
def test_broken_records_are_refused_with_the_careful_words(
    what: str, model: type[Any], supported: int, valid: bytes, raw: bytes | None
) -> None:
    decoded = _same(raw, model, supported, what)
    assert decoded.record is None
    assert decoded.refused


@pytest.mark.parametrize(("what", "model", "supported", "valid"), _KINDS)
@pytest.mark.parametrize("version", [2, 1000, "2", True, 1.0, 2.0, None, -1, [2], {"v": 2}, 10**30])
def test_every_kind_of_version_reads_the_same_both_ways(
    what: str, model: type[Any], supported: int, valid: bytes, version: object
) -> None:
    raw = _with(valid, lambda d: d.update(schema_version=version))
    decoded = _same(raw, model, supported, what)
    if version == 1000:
        assert decoded.newer


def test_a_valid_record_of_a_newer_version_is_refused_as_newer() -> None:
    raw = _with(alert(instance="a").to_bytes(), lambda d: d.update(schema_version=2))
    decoded = _same(raw, AlertRecord, ALERT_SCHEMA_VERSION, "alert record")
    assert decoded.record is None
    assert decoded.newer


def test_duplicate_keys_and_strings_json_can_smuggle_read_the_same_both_ways() -> None:
    valid = alert(instance="a").to_bytes().decode()
    for raw in [
        valid.replace('"status":"firing"', '"status":"resolved","status":"firing"'),
        valid.replace('"status":"firing"', '"status":"firing","status":"resolved"'),
        valid.replace('"instance":"a"', '"instance":"\\ud800"'),
        valid.replace('"instance":"a"', '"instance":"\\udc00\\ud800"'),
        valid.replace('"instance":"a"', '"instance":"\\u0000"'),
        valid.replace('"instance":"a"', '"instance":"\\ud83d\\ude00"'),
        valid.replace('"status":"firing"', '"status":"firing","extra":{"deep":[1,2,{"x":null}]}'),
    ]:
        _same(raw.encode(), AlertRecord, ALERT_SCHEMA_VERSION, "alert record")


@pytest.mark.parametrize(("what", "model", "supported", "valid"), _KINDS)
def test_a_lone_surrogate_anywhere_is_refused_naming_where(
    what: str, model: type[Any], supported: int, valid: bytes
) -> None:
    """pydantic's JSON parser refuses a ``\\ud800`` escape; ``json.loads`` returns it as a string
    that fails wherever it is later encoded (a transaction, a Kafka record): the careful reading
    refuses it too, so the record is quarantined instead of failing the batch."""
    for change, where in [
        (lambda d: d.update(extra={"deep": ["ok", "\ud800"]}), "extra.deep.1"),
        (lambda d: d.update({"\udc00": 1}), "\\udc00"),
    ]:
        decoded = _same(_with(valid, change), model, supported, what)
        assert decoded.refused == f"invalid {what}: not valid UTF-8: a lone surrogate in {where}"
    labelled = _with(valid, lambda d: d.get("labels", d).update(instance="a\udfff"))
    assert "lone surrogate" in str(_same(labelled, model, supported, what).refused)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.sampled_from(
        [
            "2026-12-07T01:02:03Z",
            "2026-12-07T01:02:03+02:00",
            "2026-12-07T01:02:03",
            "2026-12-07",
            "1765069323",
            "firing",
            "resolved",
            "acknowledge",
            "x" * 300,
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(_KINDS), field=st.text(max_size=20), value=_JSON_VALUES, data=st.data())
def test_any_field_holding_any_json_reads_the_same_both_ways(
    kind: tuple[str, type[Any], int, bytes], field: str, value: object, data: st.DataObject
) -> None:
    what, model, supported, valid = kind
    known = data.draw(st.sampled_from([*model.model_fields, field]))
    raw = _with(valid, lambda d: d.update({known: value}))
    _same(raw, model, supported, what)


def test_json_nested_past_the_stack_is_refused_not_raised() -> None:
    decoded = _same(b"[" * 100_000, AlertRecord, ALERT_SCHEMA_VERSION, "alert record")
    assert decoded.refused == "invalid alert record: JSON nested too deeply"
