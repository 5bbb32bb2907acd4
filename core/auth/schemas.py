"""Schemas of the API-key admin endpoints (separate from the ORM model; hashes and secrets never leave)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["ingest", "read", "operate", "admin"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "plant-a", "scopes": ["ingest", "read"]}]},
    )

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who or what uses the key (no control characters).",
    )
    scopes: list[Scope] = Field(
        min_length=1,
        description="`ingest`: send readings; `read`: every GET; `operate`: acknowledge and resolve alerts, "
        "assign and complete work orders; `admin`: everything else, and implies every other scope.",
    )


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "name": "plant-a",
                    "scopes": ["ingest", "read"],
                    "created_at": "2026-11-26T07:00:00Z",
                    "last_used_at": "2026-11-26T07:05:00Z",
                    "revoked_at": None,
                }
            ]
        },
    )

    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None = Field(None, description="Updated at most once a minute.")
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyRead):
    """The new key with its secret: shown in this response only, never again."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "name": "plant-a",
                    "scopes": ["ingest", "read"],
                    "created_at": "2026-11-26T07:00:00Z",
                    "last_used_at": None,
                    "revoked_at": None,
                    "key": "sm_3q2v0Yy1Kp8-Z0cJm2bq3n6dA9wVtE4uXrL5sH7gF1k",
                }
            ]
        },
    )

    key: str = Field(description="The secret (send it as X-API-Key). Store it now: it cannot be shown again.")
