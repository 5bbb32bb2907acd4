"""OpenAPI: title, version, a response model per route and documented problem+json error responses."""

from __future__ import annotations

from apps.api.main import FALLBACK_VERSION, TITLE, app_version
from core.config import Settings
from tests.api.conftest import ClientFactory


async def test_openapi_document(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["info"]["title"] == TITLE == "Smart Maintenance API"
    assert doc["info"]["version"] == app_version()
    assert app_version() != ""  # package metadata, or the fallback
    assert FALLBACK_VERSION == "0.1.0"

    paths = doc["paths"]
    assert {"/health", "/health/ready", "/metrics"} <= set(paths)
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert len(success) == 1, f"{method} {path} documents {success} as success"
            ok = responses[success[0]]["content"]
            schema = next(iter(ok.values()))["schema"]
            assert schema, f"{method} {path} has no response model"
            assert "500" in responses, f"{method} {path} does not document 500"
            for code, error in responses.items():
                if code.startswith(("4", "5")):
                    assert list(error["content"]) == ["application/problem+json"], (path, code)

    ready = paths["/health/ready"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadinessRead")
    assert ready["503"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("/ReadinessProblem")
    assert "401" in paths["/metrics"]["get"]["responses"]
    assert "failing" in doc["components"]["schemas"]["ReadinessProblem"]["properties"]


async def test_openapi_states_the_input_bounds(api: ClientFactory, offline_settings: Settings) -> None:
    """Ids are bounded by their column type, pages by their limits, text by a length and no NUL, date-times by a
    stated range: a client can read every limit from the document."""
    async with api(offline_settings) as client:
        doc = (await client.get("/openapi.json")).json()

    def param(path: str, name: str, method: str = "get") -> dict:
        params = doc["paths"][path][method]["parameters"]
        schema = next(p for p in params if p["name"] == name)["schema"]
        return next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)

    assert param("/api/v1/assets/{asset_id}", "asset_id")["maximum"] == 2**31 - 1
    assert param("/api/v1/alerts/{alert_id}", "alert_id")["maximum"] == 2**63 - 1
    assert param("/api/v1/maintenance/tasks/{task_id}", "task_id")["minimum"] == 1
    assert param("/api/v1/anomalies", "offset")["maximum"] == 10_000_000
    assert param("/api/v1/anomalies", "limit")["maximum"] == 1000
    site = param("/api/v1/assets", "site")
    assert site["maxLength"] == 200 and site["pattern"] == r"^[^\x00]*$"
    start = next(p for p in doc["paths"]["/api/v1/anomalies"]["get"]["parameters"] if p["name"] == "start")
    assert "1970" in start["description"] and "9999" in start["description"]
    schemas = doc["components"]["schemas"]
    update = schemas["MaintenanceTaskUpdate"]["properties"]
    assert update["title"]["type"] == "string"  # not nullable: null is a 422
    assert schemas["WebhookCreate"]["properties"]["is_active"]["type"] == "boolean"
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)
