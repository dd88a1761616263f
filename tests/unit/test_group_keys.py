"""A group key longer than the store's index takes is stored bounded, and its alerts go on
(models/group_keys.py): on PostgreSQL such a key raised ``ProgramLimitExceeded`` at every retry
and held every alert behind it."""

import hashlib
import secrets

from sqlalchemy import select

from models.alertmanager import format_group_key
from models.group_keys import GROUP_KEY_MAX_BYTES, stored_group_key
from store.incidents import IncidentStore
from store.schema import incident_groups, incidents
from streams.pipeline import Pipeline, regroup
from streams.rules import load_rules
from tests.builders import T0, alert
from tests.unit.test_pipeline_store import POLICY


def test_a_key_that_fits_is_stored_as_it_is() -> None:
    key = format_group_key({"alertname": "DiskFull", "cluster": "eu-1"})
    assert stored_group_key(key) is key
    exact = "k" * GROUP_KEY_MAX_BYTES
    assert stored_group_key(exact) is exact


def test_a_longer_key_is_its_beginning_and_the_digest_of_all_of_it() -> None:
    key = '{}:{alertname="' + secrets.token_hex(5_000) + '"}'
    stored = stored_group_key(key)
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert len(stored.encode()) <= GROUP_KEY_MAX_BYTES
    assert stored.endswith(f"…sha256:{digest}")
    assert key.startswith(stored.removesuffix(f"…sha256:{digest}"))
    assert stored_group_key(key) == stored  # (the same on every replay)
    # Keys that share their beginning are still told apart by their digests.
    other = key[:-3] + '0"}' if not key.endswith('0"}') else key[:-3] + '1"}'
    assert stored_group_key(other) != stored


def test_a_long_key_of_wide_characters_is_cut_between_characters() -> None:
    key = "€" * GROUP_KEY_MAX_BYTES  # three bytes each
    stored = stored_group_key(key)
    assert len(stored.encode()) <= GROUP_KEY_MAX_BYTES
    assert set(stored.split("…")[0]) == {"€"}


def test_every_record_is_regrouped_under_its_stored_key() -> None:
    long = '{}:{x="' + "y" * 3_000 + '"}'
    record = alert("Long", group=long)
    assert regroup(record, ()).group_key == stored_group_key(long)
    by_labels = alert("Long", service="s" * 3_000)
    regrouped = regroup(by_labels, ("alertname", "service"))
    expected = format_group_key({"alertname": "Long", "service": "s" * 3_000})
    assert regrouped.group_key == stored_group_key(expected)
    short = alert("Short")
    assert regroup(short, ()) is short


async def test_alerts_of_a_group_key_longer_than_the_index_open_and_join_one_incident(engine) -> None:  # type: ignore[no-untyped-def]
    long = '{}:{alertname="' + secrets.token_hex(5_000) + '"}'  # (incompressible: 10 kB)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY)
    first = alert("Long", group=long, instance="a")
    second = alert("Long", group=long, instance="b", at=T0.replace(second=30))
    behind = alert("Behind", instance="c", at=T0.replace(second=31))
    events = await pipeline.process_alerts([first, second, behind])
    opened = {e.incident_id for e in events if e.type.value == "opened"}
    assert len(opened) == 2  # the long group's incident, and the alert behind it
    async with engine.connect() as conn:
        rows = (await conn.execute(select(incidents.c.group_key, incidents.c.id))).all()
        groups = (await conn.execute(select(incident_groups.c.group_key))).scalars().all()
    by_key = dict(rows)
    assert set(by_key) == {stored_group_key(long), behind.group_key}
    assert set(groups) == set(by_key)
    incident = await IncidentStore(engine).get(by_key[stored_group_key(long)])
    assert incident is not None
    assert incident.alerts_total == 2
