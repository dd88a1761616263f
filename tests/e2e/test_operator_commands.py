"""Operator commands on what the real pieces built: Alertmanager -> receiver -> Kafka -> worker ->
store and incident-events, then ``incidents list|show``, ``postmortem`` and ``report`` (from the
store and from the topic) in a process of their own, configured only by ``SEVFLOW_*`` variables.

The process builds sevflow's parser shape with the operator commands' groups alone
(sevflow/commands/); ``python -m sevflow`` runs the same functions.
"""

import subprocess
import sys
from collections.abc import Iterator

import pytest

from analytics.topic import TopicError, read_events
from testkit.harness import Alertmanager, Sevflow, wait_for
from testkit.local import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DRIVER = """
import argparse, sys
from models.settings import Settings
from sevflow.commands import add_commands, incidents, postmortem, report, run_command
groups = (incidents, report, postmortem)
parser = argparse.ArgumentParser(prog="sevflow")
add_commands(parser.add_subparsers(dest="command", required=True), groups)
raise SystemExit(run_command(Settings(), parser.parse_args(sys.argv[1:]), groups=groups))
"""


@pytest.fixture
def running(tmp_path, kafka_bootstrap: str) -> Iterator[Sevflow]:  # type: ignore[no-untyped-def]
    sevflow = Sevflow(tmp_path, kafka_bootstrap, f"sqlite:///{tmp_path / 'e2e.db'}")
    sevflow.extra_env.update(
        SEVFLOW_EVENTS_TOPIC=f"e2e-events-{sevflow.suffix}",
        SEVFLOW_COMMANDS_TOPIC=f"e2e-commands-{sevflow.suffix}",
    )
    alertmanager = Alertmanager(tmp_path, f"{sevflow.url}/webhooks/alertmanager", token=sevflow.token)
    try:
        sevflow.start()
        alertmanager.start()
        alertmanager.amtool(
            "alert",
            "add",
            "alertname=HighErrorRate",
            "service=api",
            "severity=critical",
            "--annotation=summary=API error rate above 5%",
        )
        yield sevflow
    finally:
        alertmanager.stop()
        sevflow.stop()


def sevflow_command(sevflow: Sevflow, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *argv],
        cwd=REPO,
        env=sevflow.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def events_on_topic(sevflow: Sevflow) -> int:
    import asyncio

    async def count() -> int:
        read = await read_events(sevflow.kafka_bootstrap, sevflow.env()["SEVFLOW_EVENTS_TOPIC"])
        return len(read.events)

    try:
        return asyncio.run(count())
    except TopicError:  # the relay may not have created the topic yet
        return 0


def test_operator_commands_on_a_real_incident(running: Sevflow) -> None:
    sevflow = running

    def listed() -> str | None:
        result = sevflow_command(sevflow, "incidents", "list", "--service", "api")
        return result.stdout if result.returncode == 0 and "inc_" in result.stdout else None

    table = wait_for(listed, 60, "the incident in `incidents list`", interval=1)
    incident_id = next(w for w in table.split() if w.startswith("inc_"))
    assert "SEV2" in table
    assert "API error rate above 5%" in table

    show = sevflow_command(sevflow, "incidents", "show", incident_id)
    assert show.returncode == 0, show.stderr
    assert "Alert fired: HighErrorRate" in show.stdout

    postmortem = sevflow_command(sevflow, "postmortem", incident_id)
    assert postmortem.returncode == 0, postmortem.stderr
    assert postmortem.stdout.startswith("# Incident Postmortem: API error rate above 5%\n")
    assert "**Severity:** SEV2" in postmortem.stdout
    assert " - Alert fired: HighErrorRate\n" in postmortem.stdout

    wait_for(lambda: events_on_topic(sevflow) >= 1, 60, "incident events on the topic", interval=1)
    from_store = sevflow_command(sevflow, "report")
    from_topic = sevflow_command(sevflow, "report", "--from-topic")
    assert from_store.returncode == 0, from_store.stderr
    assert from_topic.returncode == 0, from_topic.stderr
    topic = sevflow.env()["SEVFLOW_EVENTS_TOPIC"]
    store_table = from_store.stdout.split("\n\n")[0]
    assert store_table == from_topic.stdout.split("\n\n")[0]
    assert f"Source: topic {topic}" in from_topic.stdout
    assert "records (100%)" in from_topic.stderr
    sev2 = next(line for line in store_table.splitlines() if line.startswith("SEV2"))
    assert sev2.split()[2] == "1"  # one SEV2 incident, still pending its acknowledgement

    missing = sevflow_command(sevflow, "incidents", "show", "inc_0000000000000000")
    assert missing.returncode == 1
    assert "no incident inc_0000000000000000" in missing.stderr
