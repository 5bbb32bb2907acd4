"""The AppError hierarchy: statuses, problem types and titles, problem bodies, headers; validation summaries."""

from __future__ import annotations

import pytest

from apps.api.errors import MAX_VALIDATION_ERRORS, summarize_validation_errors
from core.errors import (
    ERRORS_BY_STATUS,
    PROBLEM_TYPE_BASE,
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

EXPECTED = [
    (NotFound, 404, "Not Found"),
    (Conflict, 409, "Conflict"),
    (ValidationFailed, 422, "Validation Failed"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (PayloadTooLarge, 413, "Payload Too Large"),
    (UnsupportedMediaType, 415, "Unsupported Media Type"),
    (RateLimited, 429, "Too Many Requests"),
    (ServiceUnavailable, 503, "Service Unavailable"),
]


@pytest.mark.parametrize(("cls", "status", "title"), EXPECTED)
def test_statuses_and_titles(cls: type[AppError], status: int, title: str) -> None:
    assert issubclass(cls, AppError)
    error = cls("something specific")
    assert error.status_code == status
    assert error.title == title
    assert error.detail == "something specific"
    assert error.type.startswith(PROBLEM_TYPE_BASE)
    assert ERRORS_BY_STATUS[status] is cls


def test_problem_types_are_unique() -> None:
    types = [cls.type_uri() for cls, _, _ in EXPECTED]
    assert len(set(types)) == len(types)


def test_not_http_exceptions() -> None:
    from starlette.exceptions import HTTPException

    assert not issubclass(AppError, HTTPException)


def test_default_detail_is_the_title() -> None:
    assert NotFound().detail == "Not Found"
    assert str(Conflict("duplicate")) == "duplicate"


def test_to_problem() -> None:
    error = Conflict("sensor exists", extra={"sensor_id": "s-1", "status": "ignored: reserved member"})
    body = error.to_problem(instance="/sensors", correlation_id="rid-1")
    assert body == {
        "type": PROBLEM_TYPE_BASE + "conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "sensor exists",
        "instance": "/sensors",
        "correlation_id": "rid-1",
        "sensor_id": "s-1",
    }


def test_validation_failed_carries_errors() -> None:
    error = ValidationFailed(
        "bad batch", errors=[{"loc": ["body", 0, "value"], "msg": "not a number", "type": "x"}]
    )
    assert error.to_problem()["errors"][0]["loc"] == ["body", 0, "value"]
    assert ValidationFailed().to_problem()["errors"] == []


def test_headers() -> None:
    assert RateLimited(retry_after_s=12).headers["Retry-After"] == "12"
    assert "Retry-After" not in RateLimited().headers
    assert "X-API-Key" in Unauthorized().headers["WWW-Authenticate"]
    assert Unauthorized().detail  # a useful default detail


def test_summarize_validation_errors_never_echoes_input() -> None:
    huge = "y" * 10_000
    raw = [
        {
            "loc": ("body", "name"),
            "msg": "too long",
            "type": "string_too_long",
            "input": huge,
            "ctx": {"max": 5},
        },
        {"loc": ("query", "limit"), "msg": "m" * 1_000, "type": "int_parsing", "input": "abc"},
    ]
    items = summarize_validation_errors(raw)
    assert items[0] == {"loc": ["body", "name"], "msg": "too long", "type": "string_too_long"}
    assert len(items[1]["msg"]) <= 300
    assert huge not in repr(items)


def test_summarize_validation_errors_is_bounded() -> None:
    raw = [{"loc": ("body", i), "msg": "bad", "type": "x"} for i in range(500)]
    items = summarize_validation_errors(raw)
    assert len(items) == MAX_VALIDATION_ERRORS
    assert items[3]["loc"] == ["body", 3]
