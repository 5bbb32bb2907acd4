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
