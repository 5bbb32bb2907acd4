"""The UI's only way to the platform: a small synchronous httpx client for the API.

Base URL ``API_BASE_URL``, header ``X-API-Key: SM_CONSOLE_API_KEY`` (the console's own key, see ``ui.settings``),
a bounded timeout. Failures raise
:class:`ApiError` carrying the HTTP status (``None`` when the API could not be reached) and the RFC 9457
``application/problem+json`` body, so pages can show ``error.detail`` instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from ui.settings import ConsoleSettings

API_KEY_HEADER = "X-API-Key"
DEFAULT_TIMEOUT_S = 5.0


class ApiError(Exception):
    """A failed API call. ``status`` is None when no HTTP response was received."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.problem: dict[str, Any] = problem or {}
        self.url = url

    @property
    def title(self) -> str | None:
        return self.problem.get("title")

    @property
    def correlation_id(self) -> str | None:
        return self.problem.get("correlation_id")


class ApiUnavailable(ApiError):
    """The API did not answer: connection refused, DNS failure or timeout."""


@dataclass(frozen=True)
class ComponentStatus:
    status: str
    latency_ms: float | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Readiness:
    """``GET /health/ready``: 200 (ready) and 503 (not ready) both carry the per-component statuses."""

    ready: bool
    components: dict[str, ComponentStatus]
    version: str | None = None
    detail: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: dict[str, Any], *, ready: bool) -> Readiness:
        components = {
            name: ComponentStatus(
                status=str(value.get("status", "unknown")),
                latency_ms=value.get("latency_ms"),
                detail=value.get("detail"),
            )
            for name, value in (body.get("components") or {}).items()
            if isinstance(value, dict)
        }
        return cls(
            ready=ready,
            components=components,
            version=body.get("version"),
            detail=body.get("detail"),
            info=body.get("info") or {},
        )


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json, application/problem+json"}
        if api_key:
            headers[API_KEY_HEADER] = api_key
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport, trust_env=False
        )

    @classmethod
    def from_settings(cls, settings: ConsoleSettings) -> ApiClient:
        return cls(settings.api_base_url, settings.api_key.get_secret_value(), timeout=settings.timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise :class:`ApiUnavailable` when no response arrives (never returns a 5xx silently)."""
        url = self.base_url + path
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(f"the API at {self.base_url} did not answer in time", url=url) from exc
        except httpx.TransportError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ApiUnavailable(f"the API at {self.base_url} is unreachable ({reason})", url=url) from exc

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        if response.is_error:
            raise self._error(response)
        return self._decoded(response)

    @staticmethod
    def _decoded(response: httpx.Response) -> Any:
        """The JSON body of a successful answer; ApiError when it is not JSON."""
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                "the API answered with a body that is not JSON",
                status=response.status_code,
                url=str(response.url),
            ) from exc

    def get_bytes(self, path: str, **kwargs: Any) -> bytes:
        """``GET path`` of a file (a CSV, a PNG): the body as bytes, or ApiError with the problem's detail."""
        response = self.request("GET", path, **kwargs)
        if response.is_error:
            raise self._error(response)
        return response.content

    def send_json(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """A write (POST/PATCH/DELETE); the decoded JSON answer, or ApiError with the problem's detail."""
        response = self.request(method, path, json=json, params=params, **kwargs)
        if response.is_error:
            raise self._error(response)
        if not response.content:
            return None
        return self._decoded(response)

    @staticmethod
    def _error(response: httpx.Response) -> ApiError:
        problem = _problem(response)
        detail = problem.get("detail") or problem.get("title") or f"HTTP {response.status_code}"
        return ApiError(str(detail), status=response.status_code, problem=problem, url=str(response.url))

    # --- endpoints -------------------------------------------------------------------------------------------
    def liveness(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "ok", "version": …}``."""
        return self.get_json("/health")  # type: ignore[no-any-return]

    def readiness(self) -> Readiness:
        """``GET /health/ready``; a 503 is an answer too (not ready), any other error raises ApiError."""
        response = self.request("GET", "/health/ready")
        if response.status_code == 200:
            return Readiness.from_body(_problem(response), ready=True)
        if response.status_code == 503 and "components" in (body := _problem(response)):
            return Readiness.from_body(body, ready=False)
        raise self._error(response)
