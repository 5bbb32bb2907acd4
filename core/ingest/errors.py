"""Ingest-specific domain errors (AppError subclasses; the API renders them as problem+json)."""

from __future__ import annotations

from core.errors import AppError


class MalformedJSON(AppError):
    status_code = 400
    slug = "malformed-json"
    title = "Malformed JSON"


class IdempotencyKeyInFlight(AppError):
    status_code = 409
    slug = "idempotency-key-in-flight"
    title = "Idempotency Key In Flight"


class IdempotencyKeyMismatch(AppError):
    status_code = 422
    slug = "idempotency-key-reused"
    title = "Idempotency Key Reused"


__all__ = ["IdempotencyKeyInFlight", "IdempotencyKeyMismatch", "MalformedJSON"]
