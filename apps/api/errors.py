"""The one place that turns exceptions into RFC 9457 ``application/problem+json`` responses.

* ``AppError`` (core.errors) → its status, type, title and detail.
* ``RequestValidationError`` → 422 listing ``{loc, msg, type}`` per error: never the input, the library's
  documentation URL or its ``ctx`` (in every environment).
* A body that is not decodable text (not UTF-8) → 422 ``json_invalid`` at ``["body"]``, like malformed JSON.
* Starlette/FastAPI ``HTTPException`` (unknown route 404, 405, …) → a problem with the same status and headers.
* A value the database refuses (SQLSTATE class 22: out of range, NUL in text …) → 422 without the value.
* The database unavailable (unreachable, connection lost, starting up or in crash recovery, too many
  connections) → 503 with ``Retry-After``.
* Anything else → 500 with a generic detail; the stack trace goes to the server log only.

Every body carries ``instance`` (the request path) and ``correlation_id`` (the request's ``X-Request-ID``).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.db.errors import RETRY_AFTER_S, as_service_unavailable, is_data_exception, sqlstate
from core.errors import ERRORS_BY_STATUS, AppError, InternalError, ValidationFailed
from core.observability.logging import get_correlation_id

logger = logging.getLogger("apps.api.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_VALIDATION_ERRORS = 50
MAX_MESSAGE_CHARS = 300


# --- schemas (OpenAPI) ----------------------------------------------------------------------------------------
class Problem(BaseModel):
    """RFC 9457 problem details, plus the request's correlation id."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "tag:smart-maintenance,2026:problem/not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "sensor 'pump-7' does not exist",
                    "instance": "/sensors/pump-7",
                    "correlation_id": "6f1c2b9a0d3e4f5a8b7c6d5e4f3a2b1c",
                }
            ]
        },
    )

    type: str = Field("about:blank", description="URI identifying the problem type (not to be dereferenced).")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str | None = Field(None, description="Explanation of this occurrence.")
    instance: str | None = Field(None, description="Request path of this occurrence.")
    correlation_id: str | None = Field(None, description="X-Request-ID of the request; quote it in reports.")


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[ValidationErrorItem] = Field(default_factory=list)


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid API key",
    403: "The API key lacks the required scope",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Rate limit exceeded",
    500: "Unexpected server error (a bug); quote the correlation_id",
    503: "A dependency is unavailable",
}


def document_body_limit(schema: dict[str, Any]) -> None:
    """Every operation that takes a request body documents 413 (the body-size limit applies to all of them)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "413",
                {
                    "description": _DESCRIPTIONS[413],
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                },
            )


def problem_responses(*statuses: int, **models: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, e.g. ``problem_responses(404, 409)``.

    ``models`` overrides the schema per status, keyed ``s503=ReadinessProblem``.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model = models.get(f"s{status}") or (ValidationProblem if status == 422 else Problem)
        out[status] = {
            "model": model,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        }
    return out


# --- rendering ------------------------------------------------------------------------------------------------
def _correlation_id(request: Request) -> str | None:
    return get_correlation_id() or request.scope.get("state", {}).get("request_id")


def problem_response(
    request: Request, error: AppError, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = error.to_problem(instance=request.url.path, correlation_id=_correlation_id(request))
    merged = {**error.headers, **(headers or {})}
    if error.status_code == 503 and not any(name.lower() == "retry-after" for name in merged):
        merged["Retry-After"] = str(RETRY_AFTER_S)  # every 503 says when to retry
    return JSONResponse(
        body, status_code=error.status_code, headers=merged or None, media_type=PROBLEM_MEDIA_TYPE
    )


def _truncate(value: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def summarize_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """``{loc, msg, type}`` per pydantic error; never the offending input (may be huge or sensitive)."""
    items = []
    for err in list(errors)[:MAX_VALIDATION_ERRORS]:
        loc = [part if isinstance(part, int) else _truncate(str(part), 100) for part in err.get("loc", ())]
        items.append(
            {"loc": loc, "msg": _truncate(str(err.get("msg", ""))), "type": str(err.get("type", ""))}
        )
    return items


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status_code >= 500:
        logger.warning("%s: %s", type(exc).__name__, exc.detail)
    return problem_response(request, exc)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    errors = summarize_validation_errors(raw)
    count = len(raw)
    detail = f"{count} validation error{'s' if count != 1 else ''} in the request"
    if count > len(errors):
        detail += f" (first {len(errors)} listed)"
    return problem_response(request, ValidationFailed(detail, errors=errors))


def _body_not_decodable(exc: StarletteHTTPException) -> bool:
    """FastAPI's 400 for a JSON body it could not even decode as text (it raises it from the decode error)."""
    return exc.status_code == 400 and isinstance(exc.__cause__, ValueError)


async def http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if _body_not_decodable(exc):
        errors = [{"loc": ["body"], "msg": "JSON decode error: the body is not UTF-8 text", "type": "json_invalid"}]
        return problem_response(request, ValidationFailed("the request body is not valid JSON", errors=errors))
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    if detail == phrase:
        if status == 404:
            detail = f"No resource at {request.url.path}"
        elif status == 405:
            detail = f"Method {request.method} is not allowed on {request.url.path}"
    cls = ERRORS_BY_STATUS.get(status)
    error = cls(detail) if cls is not None else _HTTPStatusError(status, phrase, detail)
    return problem_response(request, error, headers=dict(exc.headers or {}))


class _HTTPStatusError(AppError):
    """A framework HTTP status without a class of its own: ``about:blank`` with the status phrase as title."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status  # type: ignore[misc]
        self.title = title  # type: ignore[misc]

    @property
    def type(self) -> str:
        return "about:blank"


def unhandled_response(request: Request, exc: BaseException) -> JSONResponse:
    """500 for an unexpected exception: logged with its stack trace, answered with a generic detail.

    A database outage is not a bug: it is answered 503 (retry later) and logged without a stack trace. Nor is a
    value the database refuses (a data exception, SQLSTATE class 22): it is the request's, answered 422."""
    if sqlstate(exc) == "23503":  # foreign_key_violation: the request refers to a row that does not exist
        logger.info("foreign key violation on %s %s", request.method, request.url.path)
        errors = [{"loc": ["body"], "msg": "refers to something that does not exist", "type": "value_error"}]
        return problem_response(request, ValidationFailed("the request refers to a missing resource", errors=errors))
    if is_data_exception(exc):
        logger.info("data exception on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        errors = [
            {"loc": ["request"], "msg": "a value is out of the range the database accepts", "type": "value_error"}
        ]
        return problem_response(
            request, ValidationFailed("a value of the request cannot be stored or compared", errors=errors)
        )
    unavailable = as_service_unavailable(exc, "the database is unavailable; nothing was stored, retry later")
    if unavailable is not None:
        logger.warning(
            "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
        )
        return problem_response(request, unavailable)
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    detail = "An unexpected error occurred. Quote the correlation_id when reporting it."
    return problem_response(request, InternalError(detail))


async def unhandled_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    return unhandled_response(request, exc)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    # Normally the request middleware renders unexpected exceptions (so the response keeps X-Request-ID and the
    # access log sees the 500); this covers anything that escapes it.
    app.add_exception_handler(Exception, unhandled_exception_handler)


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ValidationErrorItem",
    "ValidationProblem",
    "document_body_limit",
    "install_exception_handlers",
    "problem_response",
    "problem_responses",
    "summarize_validation_errors",
    "unhandled_response",
]
