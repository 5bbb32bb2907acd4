"""API access for pages: cached reads (``st.cache_data`` with a TTL), writes that drop the cache, and errors shown
as ``st.error`` (never a traceback).

Every read goes through :func:`get` (one page of a list endpoint, limits always set) so that no page asks the
API for an unbounded result. The cache key holds the base URL and a fingerprint of the API key, so two consoles
(or two tests) pointing at different APIs never share answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import streamlit as st

from ui.api_client import ApiClient, ApiError
from ui.settings import ConsoleConfigurationError, ConsoleSettings, get_console_settings

READ_TTL_S = 15.0
"""Reads are cached this long; every write clears the cache so the next render shows its effect."""
PAGE_LIMIT = 1000
"""The list endpoints' largest page."""


def settings_or_stop() -> ConsoleSettings:
    try:
        return get_console_settings()
    except ConsoleConfigurationError as exc:
        st.error(f"The console's configuration is invalid:\n\n{exc}")
        st.stop()
        raise  # pragma: no cover - st.stop() raises


@st.cache_resource(show_spinner=False)
def _client(base_url: str, api_key: str, timeout: float) -> ApiClient:
    return ApiClient(base_url, api_key, timeout=timeout)


def _settings_client(settings: ConsoleSettings) -> ApiClient:
    return _client(settings.api_base_url, settings.api_key.get_secret_value(), settings.timeout_s)


def client() -> ApiClient:
    return _settings_client(settings_or_stop())


def _fingerprint(settings: ConsoleSettings) -> str:
    return hashlib.sha256(settings.api_key.get_secret_value().encode()).hexdigest()[:16]


def slow_timeout() -> float:
    """ML endpoints load models from the registry on first use: they get longer than the client's default."""
    return settings_or_stop().slow_timeout_s


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def _cached_get(
    base_url: str, key_fingerprint: str, path: str, params: tuple[tuple[str, Any], ...], timeout: float | None
) -> Any:
    del key_fingerprint  # part of the cache key only
    settings = settings_or_stop()
    extra = {} if timeout is None else {"timeout": timeout}
    return _settings_client(settings).get_json(path, params=dict(params), **extra)


def _params(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in params.items() if v is not None))


def get(path: str, *, timeout: float | None = None, **params: Any) -> Any:
    """``GET path`` (cached for READ_TTL_S); raises ApiError."""
    settings = settings_or_stop()
    return _cached_get(settings.api_base_url, _fingerprint(settings), path, _params(params), timeout)


def get_items(path: str, limit: int = PAGE_LIMIT, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """One page of a list endpoint: ``(items, total)``; ``limit`` is capped at the API's largest page."""
    body = get(path, limit=min(limit, PAGE_LIMIT), **params)
    return list(body.get("items") or []), int(body.get("total", len(body.get("items") or [])))


def send(
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Any:
    """A write; on success the read cache is cleared. Raises ApiError."""
    extra = {} if timeout is None else {"timeout": timeout}
    result = client().send_json(method, path, json=json, params=dict(params or {}), **extra)
    _cached_get.clear()
    return result


def refresh() -> None:
    _cached_get.clear()
    _cached_bytes.clear()


def show_error(exc: ApiError, what: str) -> None:
    """A failed call as a visible message: unreachable API, HTTP status and problem detail, correlation id."""
    if exc.status is None:
        st.error(
            f"Could not load {what}: the API is down ({exc.detail}). Start the platform with `make up` "
            "(or the API alone with `python -m apps.cli serve-api`), then reload this page."
        )
        return
    message = f"Could not load {what}: the API answered HTTP {exc.status}: {exc.detail}"
    if exc.correlation_id:
        message += f" (correlation id {exc.correlation_id})"
    st.error(message)


def problem_errors(exc: ApiError) -> list[dict[str, Any]]:
    """The ``errors`` list of a 422 problem (``loc``, ``msg``, ``type``), empty otherwise."""
    errors = exc.problem.get("errors")
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def load(path: str, what: str, **params: Any) -> Any | None:
    """``get`` or None after showing the error."""
    try:
        return get(path, **params)
    except ApiError as exc:
        show_error(exc, what)
        return None


def load_items(
    path: str, what: str, limit: int = PAGE_LIMIT, **params: Any
) -> tuple[list[dict[str, Any]], int] | None:
    try:
        return get_items(path, limit, **params)
    except ApiError as exc:
        show_error(exc, what)
        return None


def load_or_stop(path: str, what: str, **params: Any) -> Any:
    body = load(path, what, **params)
    if body is None:
        st.stop()
    return body


@st.cache_data(ttl=60.0, show_spinner=False)
def _cached_post(base_url: str, key_fingerprint: str, path: str, body_json: str) -> Any:
    import json

    del key_fingerprint
    settings = settings_or_stop()
    return _settings_client(settings).send_json(
        "POST", path, json=json.loads(body_json), timeout=settings.slow_timeout_s
    )


def post_cached(path: str, body: dict[str, Any]) -> Any:
    """A read-only POST (forecast, drift check), cached for a minute; raises ApiError."""
    import json

    settings = settings_or_stop()
    return _cached_post(settings.api_base_url, _fingerprint(settings), path, json.dumps(body, sort_keys=True))


@st.cache_data(ttl=60.0, show_spinner=False, max_entries=64)
def _cached_bytes(base_url: str, key_fingerprint: str, path: str) -> bytes:
    del key_fingerprint
    return _settings_client(settings_or_stop()).get_bytes(path)


def get_bytes(path: str) -> bytes:
    """A file the API serves (a dataset CSV, a report plot), cached for a minute; raises ApiError."""
    settings = settings_or_stop()
    return _cached_bytes(settings.api_base_url, _fingerprint(settings), path)
