"""``sevflow runbooks list|show|match``: what the worker would use, and a bad file named."""

import argparse
import io
import os
from pathlib import Path

import pytest

from sevflow.cli import main
from sevflow.commands.incidents import incidents_show
from tests.unit.test_cli import run_cli


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["runbooks", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_the_shipped_runbooks_in_the_order_tried(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "list")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert names == ["security-incident", "database-issues", "service-unavailable", "high-latency"]
    assert 'classification.security="true"' in out


def test_show_prints_the_runbook_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "show", "high-latency")
    assert status == 0
    assert out.startswith("# High Latency\n")
    assert "kubectl scale deployment/<deployment> --replicas=6 -n <namespace>" in out
    status, _, err = cli(capsys, "show", "nope")
    assert status == 1
    assert "no runbook 'nope'" in err


def test_match_fills_the_commands_from_the_labels(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(
        capsys, "match", "alertname=HighErrorRate", "namespace=shop", "-a", "runbook_url=https://w/5xx"
    )
    assert status == 0
    assert out.startswith("# Service Unavailable (5xx errors)  (runbook service-unavailable; ")
    assert "classification.rule=high-error-rate" in out
    assert "runbook_url: https://w/5xx" in out
    assert "not filled (no such label): deployment" in out
    assert "kubectl get pods -n shop\n" in out
    status, out, _ = cli(capsys, "match", "alertname=DiskFull", "severity=warning")
    assert status == 1
    assert out.startswith("no runbook matches")


def test_an_override_folder_and_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "high-latency.md").write_text(
        "---\ntitle: Ours\nmatchers: ['alertname=~\".*Latency\"']\n---\nPage <service>.\n"
    )
    env = {**os.environ, "SEVFLOW_RUNBOOKS_DIR": str(tmp_path)}
    shown = run_cli("runbooks", "match", "alertname=HighLatency", "service=search", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "# Ours" in shown.stdout
    assert "Page search.\n" in shown.stdout
    (tmp_path / "broken.md").write_text("---\ntitle: x\nmatchers: ['a=~\"(\"']\n---\nbody\n")
    broken = run_cli("runbooks", "list", env=env)
    assert broken.returncode == 2
    assert f"{tmp_path / 'broken.md'} line 3: " in broken.stderr
    assert "Traceback" not in broken.stderr


@pytest.mark.parametrize("role", ["worker", "run"])
def test_a_bad_runbook_stops_the_worker_at_start_naming_file_and_line(tmp_path: Path, role: str) -> None:
    (tmp_path / "broken.md").write_text("---\ntitle: x\nmatchers:\n  - 'a=~\"(\"'\n---\nbody\n")
    env = {
        **os.environ,
        "SEVFLOW_RUNBOOKS_DIR": str(tmp_path),
        "SEVFLOW_DATA_DIR": str(tmp_path / "data"),
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "SEVFLOW_ALLOW_UNAUTHENTICATED": "true",
    }
    started = run_cli(role, env=env)
    assert started.returncode == 2
    assert f"{tmp_path / 'broken.md'} line 4: bad regular expression" in started.stderr
    assert "Traceback" not in started.stderr


def test_incidents_show_and_the_api_show_the_runbook(tmp_path: Path) -> None:
    import asyncio

    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from models.settings import Settings
    from receiver.access import protect_all
    from receiver.incident_api import incident_routes
    from store.db import async_engine
    from store.incidents import IncidentStore
    from streams.pipeline import Pipeline
    from streams.rules import load_rules
    from streams.runbooks import load_runbooks
    from testkit.store_backends import fresh_database
    from tests.builders import alert, api_credentials
    from tests.unit.test_incident_api import AUTH, TOKEN
    from tests.unit.test_pipeline_store import POLICY

    settings = Settings(data_dir=tmp_path)
    url = settings.sqlalchemy_url()
    fresh_database(url)

    async def open_incidents() -> list[str]:
        engine = async_engine(url)
        try:
            pipeline = Pipeline(
                IncidentStore(engine), load_rules(None), POLICY, runbooks=load_runbooks(None)
            )
            events = await pipeline.process_alerts(
                [alert(namespace="shop", deployment="checkout"), alert("DiskAlmostFull")]
            )
            return [e.incident_id for e in events]
        finally:
            await engine.dispose()

    with_runbook, without = asyncio.run(open_incidents())
    out, err = io.StringIO(), io.StringIO()
    options = argparse.Namespace(incident_id=with_runbook)
    assert incidents_show(settings, options, out=out, err=err) == 0, err.getvalue()
    shown = out.getvalue()
    assert "Runbook:      Service Unavailable (5xx errors) (service-unavailable)\n" in shown
    assert "\nRunbook: Service Unavailable (5xx errors)\n**Symptoms:**" in shown
    assert "kubectl rollout restart deployment/checkout -n shop" in shown

    engine = async_engine(url)
    app = Starlette(routes=protect_all(incident_routes(engine), api_credentials(TOKEN)))
    with TestClient(app) as client:
        body = client.get(f"/api/incidents/{with_runbook}", headers=AUTH).json()
        runbook = body["incident"]["runbook"]
        assert runbook["name"] == "service-unavailable"
        assert "kubectl get pods -n shop\n" in runbook["text"]
        assert runbook["placeholders"] == []
        none = client.get(f"/api/incidents/{without}", headers=AUTH).json()
        assert none["incident"]["runbook"] is None
        client.portal.call(engine.dispose)
