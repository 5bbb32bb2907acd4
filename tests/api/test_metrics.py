"""/metrics: the http_* metrics (apps.api.middleware) plus our sm_* metrics, one registry, optional key protection."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from apps.api.errors import PROBLEM_MEDIA_TYPE
from apps.api.main import create_app
from core.config import Settings
from core.observability import metrics as metrics_module
from tests.api.conftest import ClientFactory

NAME = re.compile(r"sm_[a-z0-9]+_[a-z0-9_]+_(total|seconds|bytes|ratio|info|count|rows|readings|items)")


def _families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_metrics_expose_http_and_sm_metrics(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        await client.get("/health")
        await client.get("/health/ready")
        await client.get("/no/such/route")
        await client.get("/openapi.json")
        refused = await client.post("/api/v1/assets", json={"name": "x"})  # no key: the gate answers
        response = await client.get("/metrics")
    assert refused.status_code == 401
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text

    assert "http_requests_total" in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'sm_api_ready_checks_total{component="database",result="failing"}' in text
    assert "sm_db_check_latency_seconds_bucket" in text
    assert re.search(r'sm_build_info\{.*version="[^"]+".*\} 1\.0', text)

    # Status codes are grouped; unknown paths do not create one series each; /health* and /metrics excluded.
    requests = [line for line in text.splitlines() if line.startswith("http_requests_total{")]
    assert any('status="4xx"' in line and 'handler="none"' in line for line in requests)
    assert any('handler="/openapi.json"' in line and 'status="2xx"' in line for line in requests)
    assert not any("/no/such/route" in line for line in requests)
    # requests the gate refuses before the body is read are counted too
    assert any('handler="/api/v1/assets"' in line and 'status="4xx"' in line for line in requests)
    assert not any('handler="/health' in line or 'handler="/metrics"' in line for line in requests)


async def test_requests_count_under_their_route_template(api: ClientFactory, offline_settings: Settings) -> None:
    """Two paths of one route are one series (the template, remembered per path), counted once per request."""

    def count(text: str) -> float:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == "http_requests_total"
                    and labels.get("handler") == "/api/v1/sensors/{sensor_id}"
                    and labels.get("method") == "GET"
                    and labels.get("status") == "4xx"
                ):
                    return sample.value
        return 0.0

    async with api(offline_settings) as client:
        before = count((await client.get("/metrics")).text)
        for sensor_id in ("a", "b", "a"):
            assert (await client.get(f"/api/v1/sensors/{sensor_id}")).status_code == 401  # no key
        after = (await client.get("/metrics")).text
    assert count(after) - before == 3
    assert "/api/v1/sensors/a" not in after and "/api/v1/sensors/b" not in after


def test_metric_names_follow_the_convention() -> None:
    """Every metric is ours (sm_<subsystem>_<name>_<unit>, counters ending in _total) or a standard family."""
    families = list(metrics_module.REGISTRY.collect())
    ours = [f for f in families if f.name.startswith("sm_")]
    assert {f.name for f in ours} >= {"sm_api_ready_checks", "sm_db_check_latency_seconds", "sm_build"}
    for family in families:
        if family.name.startswith(("http_", "process_", "python_")):
            continue
        assert family.name.startswith("sm_"), family.name
        if family.type == "info":
            assert family.name.count("_") >= 1, family.name  # sm_<subsystem> + the _info suffix
            continue
        exposed = family.name + ("_total" if family.type == "counter" else "")
        assert NAME.fullmatch(exposed), exposed


async def test_many_apps_in_one_process_share_the_registry(
    api: ClientFactory, offline_settings: Settings
) -> None:
    for _ in range(3):
        create_app(offline_settings)
    async with api(offline_settings) as first, api(offline_settings) as second:
        await first.get("/openapi.json")
        await second.get("/openapi.json")
        text = (await second.get("/metrics")).text
    assert 'handler="/openapi.json"' in text


async def test_metrics_key_protection(api: ClientFactory, offline_settings: Settings) -> None:
    protected = offline_settings.model_copy(update={"metrics_require_key": True})
    key = protected.api_key.get_secret_value()
    async with api(protected) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"X-API-Key": "not-the-key"})
        right = await client.get("/metrics", headers={"X-API-Key": key})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert response.json()["status"] == 401
        assert key not in response.text
    assert right.status_code == 200
    assert "sm_build_info" in right.text


async def test_metrics_open_by_default(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200


async def test_openmetrics_on_request(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
