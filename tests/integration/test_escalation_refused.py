"""An escalation the database refuses for good does not hold back the others.

PostgreSQL refuses a value with a data error (``22001``, a string too long for its column, the
class of error that once stopped all processing); the run failed at the first such incident at
every tick, and no escalation behind it ever fired. A trigger on the real server refuses one
incident's escalation rows here, as such a value would.
"""

import logging

import pytest
from sqlalchemy import text

from models.escalation import playbook_policy
from models.events import EventType
from models.incident import LifecyclePolicy
from store.db import async_engine
from store.incidents import IncidentStore
from streams.escalation import run_escalations
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.builders import T0, alert

pytestmark = pytest.mark.integration

REFUSE = """
CREATE OR REPLACE FUNCTION refuse_escalation() RETURNS trigger AS $$
BEGIN
    IF NEW.incident_id = '{incident_id}' THEN
        RAISE EXCEPTION 'value too long for type character varying(64)' USING ERRCODE = '22001';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""


async def test_one_refused_escalation_lets_the_others_fire(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_database(postgres_url)
    engine = async_engine(postgres_url)
    try:
        pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
        opened = []
        for name in ("ApiDown", "DbDown", "QueueDown"):  # the first is the most overdue
            (event, *_) = await pipeline.process_alerts(
                [alert(name, service=name.lower(), severity="sev1")]
            )
            assert event.type is EventType.OPENED
            opened.append(event.incident_id)
        refused, *others = opened
        async with engine.begin() as conn:
            await conn.execute(text(REFUSE.format(incident_id=refused)))
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_escalation BEFORE INSERT OR UPDATE ON escalations "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_escalation()"
                )
            )
        store = IncidentStore(engine)
        with caplog.at_level(logging.ERROR, logger="streams.escalation"):
            events = await run_escalations(store, playbook_policy(), T0)
        fired = {e.incident_id for e in events if e.type is EventType.ESCALATED}
        assert fired == set(others)
        (line,) = [r.getMessage() for r in caplog.records if refused in r.getMessage()]
        assert "cannot be advanced (DataError [22001]" in line
        assert "INSERT" not in line  # the reason, never the statement
        # Still refused at the next tick, still alone: the others are not fired twice.
        assert await run_escalations(store, playbook_policy(), T0) == []
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS refuse_escalation ON escalations"))
            await conn.execute(text("DROP FUNCTION IF EXISTS refuse_escalation()"))
        await engine.dispose()
