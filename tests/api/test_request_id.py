"""X-Request-ID: reused when sane, generated otherwise, echoed on every response, carried into every log line."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi import FastAPI

from apps.api.middleware import sane_request_id
from core.config import Settings
from tests.api.conftest import ClientFactory, LogCapture

GENERATED = re.compile(r"[0-9a-f]{32}")


def _add_routes(app: FastAPI) -> None:
    @app.get("/_test/log")
    async def log_something() -> dict[str, str]:
        logging.getLogger("tests.api.route").info("inside the handler", extra={"answer": 42})
        logging.getLogger("some.library").warning("library line")
        return {"ok": "yes"}

    @app.get("/_test/crash")
    async def crash() -> dict[str, str]:
        raise RuntimeError("kaboom")


@pytest.mark.parametrize(
    "value",
    ["abc-123", "a" * 128, "trace:0001.span_2", "5f0e6c1f-4a4b-4bde-9a9f-1b2c3d4e5f60"],
)
def test_sane_ids_are_kept(value: str) -> None:
    assert sane_request_id(value) == value


@pytest.mark.parametrize("value", ["", "a" * 129, "has space", "new\nline", "semi;colon", "ünï", None])
def test_insane_ids_are_rejected(value: str | None) -> None:
    assert sane_request_id(value) is None


async def test_incoming_id_is_reused(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        response = await client.get("/health", headers={"X-Request-ID": "client-id.42"})
    assert response.headers["x-request-id"] == "client-id.42"


async def test_id_generated_when_absent_or_unsafe(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        absent = await client.get("/health")
        too_long = await client.get("/health", headers={"X-Request-ID": "x" * 200})
        bad_chars = await client.get("/health", headers={"X-Request-ID": "<script>"})
    ids = [r.headers["x-request-id"] for r in (absent, too_long, bad_chars)]
    assert all(GENERATED.fullmatch(i) for i in ids)
    assert len(set(ids)) == 3


async def test_id_on_error_responses(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings, customize=_add_routes) as client:
        not_found = await client.get("/nope", headers={"X-Request-ID": "rid-404"})
        crashed = await client.get("/_test/crash", headers={"X-Request-ID": "rid-500"})
        generated = await client.get("/_test/crash")
    assert not_found.status_code == 404
    assert not_found.headers["x-request-id"] == "rid-404"
    assert not_found.json()["correlation_id"] == "rid-404"
    assert crashed.status_code == 500
    assert crashed.headers["x-request-id"] == "rid-500"
    assert crashed.json()["correlation_id"] == "rid-500"
    assert GENERATED.fullmatch(generated.headers["x-request-id"])
    assert generated.json()["correlation_id"] == generated.headers["x-request-id"]


async def test_every_log_line_of_the_request_carries_the_id(
    api: ClientFactory, offline_settings: Settings, json_logs: LogCapture
) -> None:
    async with api(offline_settings, customize=_add_routes) as client:
        await client.get("/_test/log", headers={"X-Request-ID": "corr-1"})
        await client.get("/_test/log", headers={"X-Request-ID": "corr-2"})

    lines = json_logs.for_correlation("corr-1")
    by_logger = {line["logger"]: line for line in lines}
    assert by_logger["tests.api.route"]["message"] == "inside the handler"
    assert by_logger["tests.api.route"]["answer"] == 42
    assert by_logger["some.library"]["level"] == "WARNING"
    access = by_logger["apps.api.access"]
    assert access["method"] == "GET"
    assert access["path"] == "/_test/log"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    for line in lines:
        assert {"timestamp", "level", "logger", "message", "correlation_id"} <= line.keys()
        assert line["timestamp"].endswith("+00:00")
    # Nothing of request 2 leaks into request 1 and vice versa; lines outside requests carry no id.
    assert {line["logger"] for line in json_logs.for_correlation("corr-2")} == set(by_logger)
    outside = [r for r in json_logs.records() if r["correlation_id"] is None]
    assert all(r["logger"] != "apps.api.access" for r in outside)


async def test_unhandled_error_logged_with_trace_and_id(
    api: ClientFactory, offline_settings: Settings, json_logs: LogCapture
) -> None:
    async with api(offline_settings, customize=_add_routes) as client:
        response = await client.get("/_test/crash", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    lines = json_logs.for_correlation("crash-1")
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors and "RuntimeError: kaboom" in errors[0]["exc_info"]
    access = next(line for line in lines if line["logger"] == "apps.api.access")
    assert access["status"] == 500
