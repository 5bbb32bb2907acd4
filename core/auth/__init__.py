"""API keys: generation, hashing at rest, scopes, the in-process lookup cache and per-key rate limiting."""

from core.auth.keys import (
    ADMIN,
    ALL_SCOPES,
    BOOTSTRAP_KEY_NAME,
    INGEST,
    KEY_PREFIX,
    READ,
    ApiKeyService,
    AuthenticatedKey,
    CreatedKey,
    generate_key,
    has_scope,
    hash_key,
    normalise_scopes,
    register_bootstrap_key,
)

__all__ = [
    "ADMIN",
    "ALL_SCOPES",
    "BOOTSTRAP_KEY_NAME",
    "INGEST",
    "KEY_PREFIX",
    "READ",
    "ApiKeyService",
    "AuthenticatedKey",
    "CreatedKey",
    "generate_key",
    "has_scope",
    "hash_key",
    "normalise_scopes",
    "register_bootstrap_key",
]
