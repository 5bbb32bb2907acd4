"""Prometheus and Grafana in docker-compose.yml (profile ``observability``), checked without a Docker engine:
the services and their pinned images, the scrape target against the compose `api` service, the mounted
configuration files, Grafana's provisioning, and every metric and label the dashboard queries against the
registry of core/observability/metrics.py."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from core.config import Settings
from core.observability.metrics import REGISTRY
from tests.support.compose import PROJECT_ROOT, service_environment, service_mounts
from tests.support.stack import container_port, container_settings

INFRA = PROJECT_ROOT / "infrastructure"
PROMETHEUS_YML = INFRA / "prometheus" / "prometheus.yml"
DASHBOARDS = INFRA / "grafana" / "dashboards"
PROVISIONING = INFRA / "grafana" / "provisioning"
PROMQL_FUNCTIONS = {
    "sum",
    "rate",
    "increase",
    "histogram_quantile",
    "by",
    "without",
    "avg",
    "max",
    "min",
    "le",
}


def _yaml(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _bind(service: dict[str, Any], target: str) -> PurePosixPath:
    """The project path bind-mounted at ``target`` (relative to the project root)."""
    mount = next((m for m in service_mounts(service) if m.target == target), None)
    assert mount is not None and mount.kind == "bind", f"nothing bind-mounted at {target}"
    assert mount.read_only, f"{target} should be mounted read-only"
    return PurePosixPath(mount.source)


def _host_port(url_or_target: str) -> tuple[str, int]:
    host, _, port = url_or_target.split("//")[-1].split("/")[0].partition(":")
    return host, int(port)


@pytest.mark.parametrize("name", ["prometheus", "grafana"])
def test_observability_services_are_behind_their_profile_with_pinned_images(
    svcs: dict[str, dict[str, Any]], name: str
) -> None:
    svc = svcs[name]
    assert svc.get("profiles") == ["observability"]
    image, _, tag = svc["image"].rpartition(":")
    assert image and tag and tag != "latest" and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), svc["image"]


def test_default_profile_is_the_platform_with_its_bus(svcs: dict[str, dict[str, Any]]) -> None:
    default = {name for name, svc in svcs.items() if not svc.get("profiles")}
    assert default == {"db", "mlflow", "api", "ui", "worker", "nats", "redis", "mqtt", "mqtt-bridge"}


def test_prometheus_scrapes_the_api_service_on_its_port(svcs: dict[str, dict[str, Any]]) -> None:
    prometheus = svcs["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert _bind(prometheus, config_file) == PurePosixPath("./infrastructure/prometheus/prometheus.yml")
    config = _yaml(PROMETHEUS_YML)
    jobs = config["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["smart-maintenance-api", "smart-maintenance-worker"]
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # every replica of `api` (docker compose up --scale api=N): DNS service discovery of the service name's A records
    assert "static_configs" not in job, "a static api:8000 target reaches one replica per scrape, another each time"
    [discovery] = job["dns_sd_configs"]
    api = svcs["api"]
    assert discovery["names"] == ["api"] and discovery["type"] == "A", discovery
    assert discovery["port"] == container_port(api)
    assert container_settings(api).api_port == container_port(api)
    assert container_settings(api).api_workers == 1, "one process per replica: each scrape target is one process"
    assert "api" in prometheus["depends_on"]


def test_prometheus_scrapes_every_worker_on_its_metrics_port(svcs: dict[str, dict[str, Any]]) -> None:
    [discovery] = _yaml(PROMETHEUS_YML)["scrape_configs"][1]["dns_sd_configs"]
    worker = svcs["worker"]
    settings = container_settings(worker)
    assert discovery["names"] == ["worker"] and discovery["type"] == "A", discovery
    assert settings.worker_metrics_port == discovery["port"] and settings.worker_metrics_host == "0.0.0.0"
    assert str(discovery["port"]) in [str(p) for p in worker.get("expose", [])]


def test_the_api_serves_metrics_without_a_key_in_compose(svcs: dict[str, dict[str, Any]]) -> None:
    from apps.api.main import create_app
    from core.config import load_settings

    paths = create_app(load_settings(env="test")).openapi()["paths"]
    assert "get" in paths["/metrics"]
    env = service_environment(svcs["api"])
    assert env.get("SM_METRICS_REQUIRE_KEY", "false").lower() in ("false", "0", "no")
    assert Settings.model_fields["metrics_require_key"].default is False  # Prometheus sends no API key


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboards(
    svcs: dict[str, dict[str, Any]],
) -> None:
    grafana = svcs["grafana"]
    assert _bind(grafana, "/etc/grafana/provisioning") == PurePosixPath(
        "./infrastructure/grafana/provisioning"
    )
    dashboards_mount = "/var/lib/grafana/dashboards"
    assert _bind(grafana, dashboards_mount) == PurePosixPath("./infrastructure/grafana/dashboards")
    [datasource] = _yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    host, port = _host_port(datasource["url"])
    assert host == "prometheus" and port == 9090
    assert "9090:9090" in svcs["prometheus"]["ports"]
    [provider] = _yaml(PROVISIONING / "dashboards" / "smart-maintenance.yml")["providers"]
    assert provider["options"]["path"] == dashboards_mount
    home = service_environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DASHBOARDS / PurePosixPath(home).relative_to(dashboards_mount)).is_file()
    for path in DASHBOARDS.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def _registered() -> dict[str, tuple[str, ...]]:
    """Every sample name the registry can expose → the metric's label names."""
    names: dict[str, tuple[str, ...]] = {}
    for collector, metric_names in REGISTRY._collector_to_names.items():
        labels = tuple(getattr(collector, "_labelnames", ()))
        for name in metric_names:
            names[name] = labels
    return names


def _queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(panel["title"], target["expr"]) for target in panel["targets"]]
    return queries


def test_the_dashboard_covers_the_required_signals() -> None:
    exprs = " ".join(expr for _, expr in _queries())
    for metric in ("sm_ingest_readings_total", "http_request_duration_seconds_bucket", "sm_bus_queue_depth_items",
                   "sm_bus_dead_letters_total", "sm_anomaly_detected_total", "sm_alerts_opened_total"):  # fmt: skip
        assert metric in exprs, metric


@pytest.mark.parametrize(("title", "expr"), _queries())
def test_every_dashboard_query_uses_registered_metrics_and_labels(title: str, expr: str) -> None:
    registered = _registered()
    body = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    grouped = {label.strip() for group in re.findall(r"by \(([^)]*)\)", body) for label in group.split(",")}
    body = re.sub(r"by \([^)]*\)", "", body)
    metrics = {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", body) if w not in PROMQL_FUNCTIONS}
    metrics = {m for m in metrics if not re.fullmatch(r"\d.*", m)}
    assert metrics, expr
    unknown = sorted(m for m in metrics if m not in registered)
    assert not unknown, f"{title}: {unknown} not in core/observability/metrics.py"
    labels = {label for m in metrics for label in registered[m]} | {"le"}
    assert grouped <= labels, f"{title}: grouped by {sorted(grouped - labels)}, which no queried metric has"
