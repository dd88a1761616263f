"""docker-compose.yml and the Prometheus configuration, checked statically (no Docker engine here)."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.settings import Settings
from testkit.local import REPO


class _StrictLoader(yaml.SafeLoader):
    """Docker Compose refuses a mapping with a key twice; PyYAML would keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # <<: an alias's keys, which the mapping's own may override
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is defined twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _strict(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_StrictLoader)


COMPOSE = _strict(REPO / "docker-compose.yml")
SETTINGS = {f"SEVFLOW_{name.upper()}" for name in Settings.model_fields}


def test_strict_loading_refuses_a_key_given_twice() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="'ports' is defined twice"):
        yaml.load("a:\n  ports: [1]\n  ports: [2]\n", Loader=_StrictLoader)


def test_every_service_depends_only_on_services_and_the_kafka_volume_is_used() -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    kafka = services["kafka"]
    (volume,) = kafka["volumes"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == volume.split(":")[1]
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")


def test_the_package_holds_every_subpackage_and_its_data() -> None:
    """The container installs a wheel (deploy/Dockerfile), not the checkout: every package under
    the top-level ones must be found by the build's configuration, with its data files."""
    import tomllib

    from setuptools import find_namespace_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = config["packages"]["find"]["include"]
    found = set(find_namespace_packages(where=str(REPO), include=include))
    wanted = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in (
            "models",
            "streams",
            "sinks",
            "receiver",
            "store",
            "sevflow",
            "analytics",
            "kafka_admin",
        )
        for init in (REPO / top).rglob("__init__.py")
    }
    assert {"models.settings", "store.migrations", "store.migrations.versions"} <= wanted
    assert wanted <= found, sorted(wanted - found)
    assert not {p for p in found if p.split(".")[0] in ("tests", "bench", "examples")}
    data = config["package-data"]
    for package, patterns in data.items():
        base = REPO if package == "*" else REPO / package.replace(".", "/")
        for pattern in patterns:
            assert list(base.rglob(pattern) if package == "*" else base.glob(pattern)), pattern
    assert "migrations/script.py.mako" in data["store"]


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
    count = sum(len(group["rules"]) for group in yaml.safe_load(rules.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout  # the whole file loaded


def test_the_single_node_broker_gets_single_replica_topics() -> None:
    """Compose runs one broker: sevflow must not ask it for more replicas than it has."""
    for name in ("sevflow-worker", "sevflow-receiver", "sevflow-sinks"):
        environment = COMPOSE["services"][name]["environment"]
        assert environment["SEVFLOW_TOPIC_REPLICATION_FACTOR"] == "1", name


def test_only_the_public_listeners_are_published() -> None:
    """The receiver's internal port (webhook, incident API, /metrics) stays inside the compose
    network; what is published is the vendor callbacks' and the status page's."""
    defaults = Settings.model_fields
    published = {
        name: {int(port.rsplit(":", 1)[1]) for port in service.get("ports", [])}
        for name, service in COMPOSE["services"].items()
        if name.startswith("sevflow-")
    }
    assert published == {
        "sevflow-receiver": {defaults["callbacks_port"].default},
        "sevflow-worker": set(),
        "sevflow-sinks": {defaults["status_page_port"].default},
    }
    receiver = COMPOSE["services"]["sevflow-receiver"]["environment"]
    assert receiver["SEVFLOW_CALLBACKS_HOST"] == "0.0.0.0"
    assert defaults["http_port"].default not in published["sevflow-receiver"]


def test_the_canary_is_configured_where_the_pagerduty_keys_are() -> None:
    """The receiver sends the canary and the sinks route it: both get its interval, and the file
    says where its routing key goes, next to the PagerDuty routing key (a secret: never a value
    committed here)."""
    for name in ("sevflow-receiver", "sevflow-sinks"):
        environment = COMPOSE["services"][name]["environment"]
        assert float(environment["SEVFLOW_CANARY_INTERVAL_SECONDS"]) > 0, name
        assert "SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY" not in environment, name
    text = (REPO / "docker-compose.yml").read_text()
    assert re.search(r"#.*SEVFLOW_PAGERDUTY_ROUTING_KEY.*SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY", text)


def test_compose_keeps_incident_events_longer_for_analytics() -> None:
    environment = COMPOSE["services"]["sevflow-worker"]["environment"]
    settings = Settings.model_validate(
        {k.removeprefix("SEVFLOW_").lower(): v for k, v in environment.items()}
    )
    assert settings.topic_spec(settings.events_topic).retention_ms == 30 * 86_400_000
    assert settings.topic_spec(settings.alerts_topic).retention_ms is None
