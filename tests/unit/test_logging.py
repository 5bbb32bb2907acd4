"""configure_logging: JSON lines (or plain text), UTC timestamps, correlation id everywhere, idempotent."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.observability.ingest_log import IngestLogSummary
from core.observability.logging import (
    bind_correlation_id,
    configure_logging,
    correlation_id_var,
    remove_logging_handlers,
)
from core.observability.metrics import INGEST_READINGS_TOTAL, INGEST_REQUESTS_TOTAL


@pytest.fixture
def base_settings(tmp_path: Any) -> Settings:
    return load_settings(env="test", log_dir=tmp_path / "logs", data_dir=tmp_path / "data")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    remove_logging_handlers()
    root.setLevel(level)


def _configure(settings: Settings, **changes: Any) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(settings.model_copy(update=changes), stream=stream)
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_line_shape(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)
    before = datetime.now(UTC)
    logging.getLogger("tests.shape").info("hello %s", "world", extra={"sensor_id": "pump-1", "count": 3})
    [line] = _lines(stream)
    assert list(line)[:5] == ["timestamp", "level", "logger", "message", "correlation_id"]
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.shape"
    assert line["message"] == "hello world"
    assert line["correlation_id"] is None
    assert line["sensor_id"] == "pump-1" and line["count"] == 3
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert abs(stamp - before) < timedelta(seconds=5)


def test_one_json_object_per_line_even_for_multiline_messages(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)
    log = logging.getLogger("tests.multiline")
    log.warning("first\nsecond")
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("it failed")
    lines = _lines(stream)
    assert len(lines) == 2 == len(stream.getvalue().splitlines())
    assert lines[0]["message"] == "first\nsecond"
    assert lines[1]["level"] == "ERROR"
    assert "ValueError: bad value" in lines[1]["exc_info"]


def test_correlation_id_from_context(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)
    with bind_correlation_id("req-1"):
        logging.getLogger("ours").info("inside")
        logging.getLogger("sqlalchemy.engine.Engine").warning("a library line")
    logging.getLogger("ours").info("outside")
    inside, library, outside = _lines(stream)
    assert inside["correlation_id"] == library["correlation_id"] == "req-1"
    assert outside["correlation_id"] is None
    assert correlation_id_var.get() is None


async def test_correlation_id_is_per_task_and_follows_to_threads(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)

    async def handle(request_id: str) -> None:
        with bind_correlation_id(request_id):
            await asyncio.sleep(0)
            logging.getLogger("task").info("in task")
            await asyncio.to_thread(logging.getLogger("worker.thread").info, "in thread")

    await asyncio.gather(handle("a"), handle("b"))
    lines = _lines(stream)
    assert sorted((line["logger"], line["correlation_id"]) for line in lines) == [
        ("task", "a"),
        ("task", "b"),
        ("worker.thread", "a"),
        ("worker.thread", "b"),
    ]


def test_explicit_correlation_id_is_kept(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)
    with bind_correlation_id("context"):
        logging.getLogger("x").info("explicit", extra={"correlation_id": "event-7"})
    assert _lines(stream)[0]["correlation_id"] == "event-7"


def test_plain_text_when_json_disabled(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=False)
    with bind_correlation_id("req-9"):
        logging.getLogger("tests.plain").warning("readable")
    logging.getLogger("tests.plain").warning("no request")
    first, second = stream.getvalue().splitlines()
    assert not first.startswith("{")
    assert "WARNING" in first and "tests.plain" in first and "[req-9]" in first and first.endswith("readable")
    assert "+00:00" in first
    assert "[-]" in second


def test_idempotent(base_settings: Settings) -> None:
    configure_logging(base_settings, stream=io.StringIO())
    stream = _configure(base_settings, log_json=True)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_sm_handler", False)]
    assert len(ours) == 1
    logging.getLogger("once").info("only once")
    assert len(_lines(stream)) == 1


def test_level_from_settings(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True, log_level="WARNING")
    logging.getLogger("lvl").info("dropped")
    logging.getLogger("lvl").warning("kept")
    assert [line["message"] for line in _lines(stream)] == ["kept"]

    stream = _configure(base_settings, log_json=True, log_level="debug")
    logging.getLogger("lvl").debug("now kept")
    assert [line["message"] for line in _lines(stream)] == ["now kept"]


def test_uvicorn_routed_and_its_access_log_silenced(base_settings: Settings) -> None:
    stray = logging.StreamHandler(io.StringIO())
    logging.getLogger("uvicorn.error").addHandler(stray)
    stream = _configure(base_settings, log_json=True)
    error_logger = logging.getLogger("uvicorn.error")
    assert stray not in error_logger.handlers and error_logger.propagate
    with bind_correlation_id("rid"):
        error_logger.info("Started server process", extra={"color_message": "\x1b[36mStarted\x1b[0m"})
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET / HTTP/1.1" 200')
    [line] = _lines(stream)
    assert line["logger"] == "uvicorn.error"
    assert line["correlation_id"] == "rid"
    assert "color_message" not in line


def test_non_serialisable_extras_do_not_break_logging(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)
    logging.getLogger("x").info(
        "odd extras", extra={"when": datetime(2026, 1, 1, tzinfo=UTC), "obj": threading}
    )
    [line] = _lines(stream)
    assert line["when"].startswith("2026-01-01T00:00:00")
    assert "obj" in line


def test_library_loggers_taken_over_on_import_are_routed(base_settings: Settings) -> None:
    """``import mlflow`` gives mlflow/sqlalchemy.engine/alembic their own handler with propagate=False."""
    foreign = logging.StreamHandler(io.StringIO())
    for name in ("mlflow", "sqlalchemy.engine", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers = [foreign]
        logger.propagate = False
    stream = _configure(base_settings, log_json=True, log_level="INFO")
    with bind_correlation_id("lib"):
        logging.getLogger("mlflow.tracking").info("mlflow line")
        logging.getLogger("alembic.runtime.migration").info("Running upgrade")
        logging.getLogger("sqlalchemy.engine.Engine").info("SELECT 1")  # statement log: stays off at INFO
        logging.getLogger("sqlalchemy.engine.Engine").warning("pool warning")
    assert [(line["logger"], line["correlation_id"]) for line in _lines(stream)] == [
        ("mlflow.tracking", "lib"),
        ("alembic.runtime.migration", "lib"),
        ("sqlalchemy.engine.Engine", "lib"),
    ]
    assert foreign.stream.getvalue() == ""


# --- ingest log summary (core.observability.ingest_log) ------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ingest_summary_counts_requests_and_readings_since_the_last_flush(base_settings: Settings) -> None:
    stream = _configure(base_settings, log_json=True)
    INGEST_READINGS_TOTAL.labels(result="accepted").inc(5)  # before the summary exists: not counted
    clock = _Clock()
    summary = IngestLogSummary(clock=clock)
    for status, ms in ((202, 2.0), (202, 4.0), (401, 1.0), (503, 9.0), (None, 4.0)):
        summary.record(status, ms)
    INGEST_READINGS_TOTAL.labels(result="accepted").inc(7)
    INGEST_READINGS_TOTAL.labels(result="duplicate").inc(2)
    INGEST_READINGS_TOTAL.labels(result="rejected").inc(1)
    INGEST_REQUESTS_TOTAL.labels(mode="replay").inc()
    clock.now += 60.0

    figures = summary.flush()
    [line] = _lines(stream)
    expected = {
        "interval_s": 60.0,
        "requests": 5,
        "status_2xx": 2,
        "status_4xx": 1,
        "status_5xx": 2,  # a request that got no response counts as a server error
        "readings_accepted": 7,
        "readings_duplicate": 2,
        "readings_rejected": 1,
        "replays": 1,
        "mean_ms": 4.0,
    }
    assert figures == expected
    assert line["logger"] == "apps.api.ingest" and line["level"] == "INFO"
    assert {key: line[key] for key in expected} == expected
    assert line["message"] == (
        "ingest in the last 60.0 s: 5 requests (2xx 2, 4xx 1, 5xx 2), readings 7 accepted, 2 duplicates, "
        "1 rejected, 1 idempotent replays, mean 4.0 ms"
    )

    # the next interval starts from zero; readings without requests (CSV back-fill elsewhere) write no line
    INGEST_READINGS_TOTAL.labels(result="accepted").inc(3)
    clock.now += 60.0
    assert summary.flush() is None
    summary.record(202, 1.0)
    clock.now += 30.0
    assert summary.flush() == expected | {
        "interval_s": 30.0, "requests": 1, "status_2xx": 1, "status_4xx": 0, "status_5xx": 0,
        "readings_accepted": 0, "readings_duplicate": 0, "readings_rejected": 0, "replays": 0, "mean_ms": 1.0,
    }  # fmt: skip
    assert len(_lines(stream)) == 2


def test_ingest_summary_loop_flushes_every_interval_and_survives_a_failed_flush(
    base_settings: Settings,
) -> None:
    stream = _configure(base_settings, log_json=True)
    summary = IngestLogSummary()
    waits: list[float] = []
    flushes: list[int] = []

    def flush() -> None:
        flushes.append(len(waits))
        if len(flushes) == 2:
            raise RuntimeError("boom")

    summary.flush = flush  # type: ignore[method-assign]

    async def sleep(seconds: float) -> None:  # drives time: the fourth wait ends the loop
        waits.append(seconds)
        if len(waits) == 4:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(summary.run(0.5, sleep=sleep))
    assert waits == [0.5] * 4
    assert flushes == [1, 2, 3]  # one flush after each completed wait, the failed one included
    [warning] = _lines(stream)
    assert warning["level"] == "WARNING" and warning["message"] == "ingest log summary failed: RuntimeError"
