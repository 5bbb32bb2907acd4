"""Schemathesis against the real API: every operation of the OpenAPI document, generated valid and invalid inputs,
sent over real HTTP to the app served by uvicorn on 127.0.0.1 with a private migrated PostgreSQL database and the
bootstrap (admin) key.

Checks per response: no 5xx (``not_a_server_error``), except a 503 an operation documents for a dependency this
test leaves down on purpose (MLflow: nothing listens on its port, so the ML routes and readiness answer 503
``mlflow-unavailable``/``service-unavailable``, the documented answer); the body matches the documented schema
(``response_schema_conformance``); the status code and content type are documented (``status_code_conformance``,
``content_type_conformance``). Generation is bounded (``MAX_EXAMPLES`` per operation) and reproducible (a fixed
seed, derandomized, no example database).

A fuzzer must never make the platform deliver anything: the app's runtime is bootstrapped without the webhook/e-mail
delivery worker (``RuntimeOverrides(deliver_notifications=False)``), and the test asserts that the runtime it served
had none.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.api.deps import app_runtime
from apps.api.main import RuntimeOverrides, create_app
from core.config import Settings, load_settings
from core.runtime.runtime import Runtime
from tests.support.db import private_database
from tests.support.servers import serve_app_in_thread

logger = logging.getLogger("tests.api.test_fuzz")

#: Examples per operation and phase (Hypothesis ``max_examples``); with the coverage phase's boundary cases this
#: is a few hundred requests per operation at most.
MAX_EXAMPLES = 10
SEED = 13

#: Problem types of a documented 503 for a dependency that is down on purpose (MLflow).
DEPENDENCY_DOWN = ("problem/mlflow-unavailable", "problem/service-unavailable")


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """``not_a_server_error``, but a 503 the operation documents, for MLflow being down, is the right answer."""
    documented = DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]["responses"]
    if response.status_code == 503 and "503" in documented:
        body = response.json()
        if str(body.get("type", "")).endswith(DEPENDENCY_DOWN) and "mlflow" in json.dumps(body).lower():
            return True
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]

pytestmark = pytest.mark.slow


class FuzzStats:
    """What the run sent and got back: cases, statuses and failed checks per operation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cases = 0
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.operations: set[str] = set()
        self.started = time.monotonic()

    def record(self, operation: str, status: int) -> None:
        with self.lock:
            self.cases += 1
            self.statuses[status] += 1
            self.operations.add(operation)

    def summary(self) -> dict[str, Any]:
        return {
            "operations": len(self.operations),
            "cases": self.cases,
            "server_errors": sum(n for s, n in self.statuses.items() if s >= 500 and s != 503),
            "mlflow_down_503": self.statuses.get(503, 0),
            "statuses": dict(sorted(self.statuses.items())),
            "failed_checks": dict(self.failures),
            "duration_s": round(time.monotonic() - self.started, 1),
        }


@pytest.fixture(scope="module")
def fuzz_database(admin_database_url: str) -> Iterator[str]:
    """A private migrated database: whatever the fuzzer creates stays out of the other tests' way."""
    with private_database(admin_database_url, "fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def served_runtimes() -> list[Runtime]:
    """The runtimes the fuzzed app ran, recorded once it started (none may have a delivery worker)."""
    return []


@pytest.fixture(scope="module")
def fuzz_server(settings: Settings, fuzz_database: str, served_runtimes: list[Runtime]) -> Iterator[str]:
    """Base URL of the app served by uvicorn on 127.0.0.1 (a free port)."""
    app_settings = settings.model_copy(update={"database_url": fuzz_database, "rate_limit": "0"})
    app = create_app(app_settings, overrides=RuntimeOverrides(deliver_notifications=False))
    # the stdlib event loop, uvicorn's access log and a bounded graceful shutdown, as this fixture always had
    with serve_app_in_thread(
        app, name="fuzz-uvicorn", loop="asyncio", access_log=True, timeout_graceful_shutdown=30
    ) as base_url:
        served_runtimes.append(app_runtime(app))
        yield base_url


@pytest.fixture(scope="module")
def fuzz_stats() -> Iterator[FuzzStats]:
    stats = FuzzStats()
    yield stats
    summary = stats.summary()
    logger.warning("schemathesis run: %s", json.dumps(summary))
    print("\nschemathesis run:", json.dumps(summary))


def _document() -> dict[str, Any]:
    """The app's OpenAPI document (built without starting it: no database is needed to describe the API)."""
    offline = load_settings(env="test", database_url="postgresql://postgres@127.0.0.1:1/closed")
    return create_app(offline).openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@schema.parametrize()
def test_api_fuzz(case: Any, fuzz_server: str, settings: Settings, fuzz_stats: FuzzStats) -> None:
    headers = {"X-API-Key": settings.api_key.get_secret_value()}
    response = case.call(base_url=fuzz_server, headers=headers, timeout=30)
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    fuzz_stats.record(operation, response.status_code)
    try:
        case.validate_response(
            response, checks=CHECKS, headers=headers, transport_kwargs={"base_url": fuzz_server}
        )
    except Exception:
        with fuzz_stats.lock:
            fuzz_stats.failures[operation] += 1
        raise


def test_fuzz_ran_every_operation_and_delivered_nothing(
    fuzz_server: str, fuzz_stats: FuzzStats, served_runtimes: list[Runtime]
) -> None:
    """Runs after the fuzz tests: the served document is the one the cases came from, every operation got cases,
    none answered 5xx, and the delivery worker never started."""
    import httpx

    assert httpx.get(f"{fuzz_server}/openapi.json").json() == DOCUMENT
    operations = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item}
    summary = fuzz_stats.summary()
    assert fuzz_stats.operations == operations, sorted(operations - fuzz_stats.operations)
    assert summary["server_errors"] == 0, summary
    assert served_runtimes, "the served app's runtime was never recorded"
    assert all(runtime.notification_worker is None for runtime in served_runtimes), "a delivery worker ran"
