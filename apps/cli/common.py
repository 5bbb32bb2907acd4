"""What every command of ``python -m apps.cli`` shares: settings (with the local stack's database), a
transaction helper, and fail-fast checks of the services a command talks to.

A command that needs MLflow, the API or PostgreSQL checks it first and, when nothing answers, exits 1 within a
few seconds with one line naming the address it tried, e.g. ``error: cannot reach MLflow at
http://127.0.0.1:5000 (connection refused); is it running? `make up` starts it`` — instead of the clients'
default retries (MLflow's retry for minutes).
"""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import typer

from core.config import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:  # sqlalchemy's asyncio extension takes ~0.25 s to import: only where a command uses it
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

T = TypeVar("T")

#: Seconds to connect to a service, and again to get its answer, before a command gives up on it.
PROBE_TIMEOUT_S = 2.0
#: Hard limit of one probe whatever the server does (an answer trickling in byte by byte).
PROBE_DEADLINE_S = 4.0
START_HINT = "is it running? `make up` starts it"
#: MLflow's HTTP client retries a refused or failed request 7 times with exponential backoff (minutes) and
#: waits 120 s for an answer: bounded here for the commands (a variable already set in the environment wins).
MLFLOW_CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


def state_file(settings: Settings) -> Path:
    """Where a running ``up`` records its pid, status, URLs and database."""
    return settings.data_dir / "run" / "stack.json"


def running_stack() -> dict[str, Any] | None:
    """The state of the local stack if one is running (its process alive), else None."""
    try:
        path = state_file(load_settings())
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError, ConfigurationError):
        return None
    return state


def cli_settings() -> Settings:
    """Settings for a command; exit 2 with the message when they are invalid.

    With DATABASE_URL unset, a command run beside a ``make up`` stack uses that stack's database (the embedded
    PostgreSQL listens on a Unix socket whose address only the running stack knows).
    """
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if not settings.database_url_is_explicit:
        state = running_stack()
        if state and state.get("database_url"):
            settings = settings.model_copy(update={"database_url": state["database_url"]})
    return settings


async def in_transaction(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, pool_size: int = 1
) -> T:
    """Run ``work(session)`` in one transaction on a short-lived engine (committed here, by its opener)."""
    from core.db.session import create_engine, create_session_factory, unit_of_work

    engine = create_engine(settings, pool_size=pool_size, max_overflow=0)
    try:
        await require_database(engine, settings)
        async with unit_of_work(create_session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


class Unreachable(Exception):
    """A service did not answer; the message is the operator's one line."""


def unreachable_message(service: str, address: str, reason: str) -> str:
    return f"cannot reach {service} at {address} ({reason}); {START_HINT}"


def _oserror_reason(exc: BaseException) -> str | None:
    """The reason of the first OSError in an exception's chain ("connection refused", …)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError):
            if current.errno == errno.ECONNREFUSED:
                return "connection refused"
            if current.strerror:
                return current.strerror.lower()
            return str(current) or type(current).__name__
        current = current.__cause__ or current.__context__
    return None


def _http_reason(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {PROBE_TIMEOUT_S:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"connected, but no answer within {PROBE_TIMEOUT_S:g} s"
    if isinstance(exc, httpx.ConnectError):
        reason = _oserror_reason(exc)
        if reason:
            return reason
        text = str(exc).lower()
        return "connection refused" if "refused" in text else (text or type(exc).__name__)
    return str(exc) or type(exc).__name__


def probe_http(service: str, url: str, path: str = "/health") -> None:
    """Raise :class:`Unreachable` unless an HTTP server answers ``url + path`` (any status) in time.

    Not an HTTP(S) URL (a file store, ``databricks``, …): nothing to probe, returns."""
    import httpx

    if urlsplit(url).scheme not in {"http", "https"}:
        return
    address = url.rstrip("/")
    outcome: list[BaseException | None] = []

    def probe() -> None:
        timeout = httpx.Timeout(PROBE_TIMEOUT_S)
        try:
            with httpx.Client(trust_env=False, timeout=timeout) as client:
                client.get(address + path)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - every failure is reported as unreachable
            outcome.append(exc)

    worker = threading.Thread(target=probe, name=f"probe-{service}", daemon=True)
    worker.start()
    worker.join(PROBE_DEADLINE_S)
    if not outcome:
        raise Unreachable(unreachable_message(service, address, f"no answer within {PROBE_DEADLINE_S:g} s"))
    error = outcome[0]
    if error is not None:
        raise Unreachable(unreachable_message(service, address, _http_reason(error))) from None


def require_http(service: str, url: str, path: str = "/health") -> None:
    """:func:`probe_http`, or exit 1 with its one line on stderr."""
    try:
        probe_http(service, url, path)
    except Unreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def bound_mlflow_client() -> None:
    """Bound the retries and waits of MLflow's HTTP client in this process (unless the environment sets them)."""
    for name, value in MLFLOW_CLIENT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def require_mlflow(tracking_uri: str) -> None:
    """Exit 1 unless MLflow answers at ``tracking_uri``; bound the MLflow client's retries for what follows."""
    bound_mlflow_client()
    require_http("MLflow", tracking_uri)


def database_address(settings: Settings) -> str:
    """``host:port/database`` of the settings' database (no user, no password)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(settings.database_url or "")
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by the driver itself
        return "the configured DATABASE_URL"
    host = url.host or str(url.query.get("host") or "localhost")
    return f"{host}:{url.port or 5432}/{url.database or ''}"


async def require_database(engine: AsyncEngine, settings: Settings) -> None:
    """Connect once (the connection goes back to the pool for the work); exit 1 with one line if that fails.

    Bounded by ``SM_DB_CONNECT_TIMEOUT_S`` (the engine's connect timeout)."""
    from sqlalchemy.exc import DBAPIError

    try:
        async with engine.connect():
            pass
    except (OSError, TimeoutError, DBAPIError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip()
        reason = _oserror_reason(exc) or (detail.splitlines()[0] if detail else type(exc).__name__)
        typer.echo(
            f"error: {unreachable_message('PostgreSQL', database_address(settings), reason)}", err=True
        )
        raise typer.Exit(1) from None
