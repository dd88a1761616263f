"""docker-compose.yml and the Prometheus configuration, checked statically (no Docker engine here)."""

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from models.settings import Settings
from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SETTINGS = {f"SEVFLOW_{name.upper()}" for name in Settings.model_fields}


def test_compose_environment_names_real_settings() -> None:
    used = set()
    for service in COMPOSE["services"].values():
        used |= {k for k in service.get("environment", {}) if k.startswith("SEVFLOW_")}
        entry = " ".join(service.get("entrypoint", []))
        used |= set(re.findall(r"SEVFLOW_[A-Z_]+", entry))
    assert used
    assert used <= SETTINGS, sorted(used - SETTINGS)


def test_compose_mounts_exist_and_images_are_pinned() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} missing"
        image = service.get("image")
        if image:
            assert ":" in image, f"{name}: pin the image version"
            assert not image.endswith(":latest"), name
    assert {
        "kafka",
        "postgres",
        "alertmanager",
        "sevflow-receiver",
        "sevflow-worker",
        "sevflow-sinks",
    } <= set(COMPOSE["services"])


def test_prometheus_scrapes_each_role_on_its_default_port() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    defaults = Settings.model_fields
    assert targets["sevflow-receiver"] == f"sevflow-receiver:{defaults['http_port'].default}"
    assert targets["sevflow-worker"] == f"sevflow-worker:{defaults['worker_metrics_port'].default}"
    assert targets["sevflow-sinks"] == f"sevflow-sinks:{defaults['sinks_metrics_port'].default}"


def test_prometheus_config_is_valid(tmp_path: Path) -> None:
    assert shutil.which("promtool"), "promtool is missing: scripts/install-deps.sh installs it"
    text = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text()
    rules = REPO / "deploy" / "prometheus" / "sevflow-rules.yml"
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/sevflow-rules.yml", str(rules)))
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout
