"""Domain errors. Services raise these (never ``HTTPException``); the API turns them into RFC 9457 problems.

Every class carries its HTTP status, a stable problem ``type`` URI and a short ``title``. The ``detail`` is the
human-readable message for this occurrence; ``extra`` holds additional problem members (for example the list of
validation errors) and ``headers`` any response headers the status calls for (``Retry-After``,
``WWW-Authenticate``). Details must never contain secrets or stack traces: they are sent to clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

#: Problem type URIs are tag URIs (RFC 4151): stable identifiers that clients must not dereference.
PROBLEM_TYPE_BASE = "tag:smart-maintenance,2026:problem/"


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


class AppError(Exception):
    """Base of the hierarchy: a client error the caller can act upon."""

    status_code: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad Request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extra: dict[str, Any] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    @classmethod
    def type_uri(cls) -> str:
        return problem_type(cls.slug)

    @property
    def type(self) -> str:
        return self.type_uri()

    def to_problem(self, *, instance: str | None = None, correlation_id: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem object (without transport concerns)."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        if correlation_id is not None:
            body["correlation_id"] = correlation_id
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class Unauthorized(AppError):
    status_code = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail or "A valid API key is required (header X-API-Key).", **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'ApiKey header="X-API-Key"')


class Forbidden(AppError):
    status_code = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status_code = 404
    slug = "not-found"
    title = "Not Found"


class MethodNotAllowed(AppError):
    status_code = 405
    slug = "method-not-allowed"
    title = "Method Not Allowed"


class Conflict(AppError):
    status_code = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    slug = "payload-too-large"
    title = "Payload Too Large"


class UnsupportedMediaType(AppError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported Media Type"


class ValidationFailed(AppError):
    """The request is well-formed but its content is invalid; ``errors`` lists ``{loc, msg, type}`` items."""

    status_code = 422
    slug = "validation-failed"
    title = "Validation Failed"

    def __init__(self, detail: str | None = None, *, errors: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.errors = list(errors or [])
        self.extra.setdefault("errors", self.errors)

    @classmethod
    def at(cls, loc: list[str | int], message: str) -> ValidationFailed:
        """One invalid value at ``loc`` (e.g. ``["body", "unit"]``), in the shape of FastAPI's own errors."""
        return cls(message, errors=[{"loc": loc, "msg": message, "type": "value_error"}])


class RateLimited(AppError):
    status_code = 429
    slug = "rate-limited"
    title = "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after_s: int | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after_s = retry_after_s
        if retry_after_s is not None:
            self.headers.setdefault("Retry-After", str(max(0, int(retry_after_s))))


class ServiceUnavailable(AppError):
    """A dependency (database, MLflow, broker) is unavailable; not a bug, so it is not a 500."""

    status_code = 503
    slug = "service-unavailable"
    title = "Service Unavailable"


class InternalError(AppError):
    """Used only to render unexpected exceptions; never raise it for a known condition."""

    status_code = 500
    slug = "internal-error"
    title = "Internal Server Error"


#: The class that describes a bare HTTP status (used for framework errors such as an unknown route).
ERRORS_BY_STATUS: dict[int, type[AppError]] = {
    cls.status_code: cls
    for cls in (
        AppError,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        RateLimited,
        ServiceUnavailable,
        InternalError,
    )
}

__all__ = [
    "ERRORS_BY_STATUS",
    "PROBLEM_TYPE_BASE",
    "AppError",
    "Conflict",
    "Forbidden",
    "InternalError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "problem_type",
]
