"""Ingest is logged as one INFO summary per interval (``SM_INGEST_LOG_INTERVAL_S``) with its counts; the access
lines of ingest requests are DEBUG; other routes keep their INFO access line. Real app (lifespan, PostgreSQL),
real requests through ASGI; time is driven by calling the summary's flush, not by waiting."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from apps.api.deps import app_runtime
from core.config import Settings
from core.observability.logging import configure_logging, remove_logging_handlers
from tests.api.conftest import ClientFactory, LogCapture
from tests.api.ingest_support import INGEST, headers, post, reading

SUMMARY = "apps.api.ingest"
ACCESS = "apps.api.access"


@pytest.fixture
def quiet_settings(settings: Settings) -> Settings:
    """The suite's database; an interval no test reaches, so only the test's own flush (or shutdown) writes."""
    return settings.model_copy(update={"ingest_log_interval_s": 3600.0})


@pytest.fixture
def debug_logs(offline_settings: Settings) -> Iterator[LogCapture]:
    capture = LogCapture()
    capture.stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(
        offline_settings.model_copy(update={"log_json": True, "log_level": "DEBUG"}), stream=capture.stream
    )
    try:
        yield capture
    finally:
        remove_logging_handlers()
        root.setLevel(level)


def _summaries(logs: LogCapture) -> list[dict[str, Any]]:
    return [
        r for r in logs.records() if r["logger"] == SUMMARY and r["message"].startswith("ingest in the last")
    ]


def _ingest_access(logs: LogCapture) -> list[dict[str, Any]]:
    return [r for r in logs.records() if r["logger"] == ACCESS and r.get("path") == INGEST]


async def _traffic(client: httpx.AsyncClient, settings: Settings, prefix: str) -> int:
    """Eight ingest requests of every kind; returns how many were sent."""
    batch = [reading(f"{prefix}-a", minutes_ago=i) for i in range(5)]
    assert (await post(client, settings, batch)).json()["accepted"] == 5
    assert (await post(client, settings, batch)).json()["duplicates"] == 5
    mixed = [reading(f"{prefix}-b", 1), reading(f"{prefix}-b", 2) | {"colour": "red"}]
    partial = (await post(client, settings, mixed)).json()
    assert partial["accepted"] == 1 and len(partial["rejected"]) == 1
    assert (await post(client, settings, reading(f"{prefix}-c", 1))).status_code == 202  # single reading
    idem = headers(settings, **{"Idempotency-Key": f"{prefix}-k"})
    body = orjson.dumps([reading(f"{prefix}-d", 1), reading(f"{prefix}-d", 2)])
    assert (await client.post(INGEST, content=body, headers=idem)).json()["accepted"] == 2
    replayed = await client.post(INGEST, content=body, headers=idem)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert (await client.post(INGEST, content=body)).status_code == 401  # no key
    wrong_type = headers(settings) | {"Content-Type": "text/plain"}
    assert (await client.post(INGEST, content=body, headers=wrong_type)).status_code == 415
    return 8


EXPECTED = {
    "requests": 8,
    "status_2xx": 6,
    "status_4xx": 2,
    "status_5xx": 0,
    "readings_accepted": 9,
    "readings_duplicate": 5,
    "readings_rejected": 1,
    "replays": 1,
}


async def test_one_summary_line_with_the_counts_and_no_per_request_info_lines(
    api: ClientFactory, quiet_settings: Settings, json_logs: LogCapture, prefix: str
) -> None:
    apps: list[FastAPI] = []
    async with api(quiet_settings, customize=apps.append) as client:
        summary = app_runtime(apps[0]).ingest.log
        summary.flush()  # whatever start-up counted
        assert (await client.get("/health")).status_code == 200
        await _traffic(client, quiet_settings, prefix)
        figures = summary.flush()
        assert summary.flush() is None  # nothing since: no line

    assert figures is not None and figures | EXPECTED == figures, figures
    [line] = _summaries(json_logs)  # exactly one: the flush; the shutdown flush had nothing to say
    assert line["level"] == "INFO"
    assert {key: line[key] for key in EXPECTED} == EXPECTED
    assert line["mean_ms"] > 0 and line["interval_s"] >= 0
    assert (
        "8 requests (2xx 6, 4xx 2, 5xx 0), readings 9 accepted, 5 duplicates, 1 rejected" in line["message"]
    )
    assert _ingest_access(json_logs) == []  # no per-request INFO line of ingest ...
    assert [r for r in json_logs.records() if r["logger"] == "core.observability.agent"] == []  # nor per event
    health = [r for r in json_logs.records() if r["logger"] == ACCESS and r.get("path") == "/health"]
    assert [r["level"] for r in health] == ["INFO"]  # ... while other routes keep theirs


async def test_shutdown_writes_the_last_summary(
    api: ClientFactory, quiet_settings: Settings, json_logs: LogCapture, prefix: str
) -> None:
    apps: list[FastAPI] = []
    async with api(quiet_settings, customize=apps.append) as client:
        app_runtime(apps[0]).ingest.log.flush()
        assert (await post(client, quiet_settings, [reading(f"{prefix}-a", 1)])).status_code == 202
        assert _summaries(json_logs) == []
    [line] = _summaries(json_logs)
    assert line["requests"] == 1 and line["readings_accepted"] == 1 and line["status_2xx"] == 1


async def test_per_request_lines_are_debug(
    api: ClientFactory, quiet_settings: Settings, debug_logs: LogCapture, prefix: str
) -> None:
    async with api(quiet_settings) as client:
        sent = await _traffic(client, quiet_settings, prefix)
    lines = _ingest_access(debug_logs)
    assert len(lines) == sent
    assert {line["level"] for line in lines} == {"DEBUG"}
    assert sorted(line["status"] for line in lines) == [202] * 6 + [401, 415]
    assert json.dumps(lines)  # plain JSON records
