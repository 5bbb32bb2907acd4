"""``python -m apps.cli keys create|list|revoke|generate|scopes``: manage API keys directly in the database
(DATABASE_URL).

``create`` prints the secret once; only its hash is stored. A revocation reaches running API processes within
their key cache TTL (``SM_API_KEY_CACHE_TTL_S``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from apps.cli.app import app
from apps.cli.common import cli_settings, in_transaction
from core.config import Settings
from core.errors import AppError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

T = TypeVar("T")


def _settings() -> Settings:
    return cli_settings()


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    try:
        return asyncio.run(in_transaction(_settings(), work))
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _scopes(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="who or what uses the key, e.g. plant-a")],
    scopes: Annotated[
        str, typer.Option(help="comma-separated: ingest, read, operate, admin (see `keys scopes`)")
    ] = "ingest,read",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Create a key and print its secret (shown this once; store it now)."""
    from core.auth.audit import audit
    from core.auth.keys import ApiKeyService

    async def work(session: AsyncSession) -> tuple[int, str, list[str], str]:
        created = await ApiKeyService(session).create(name=name, scopes=_scopes(scopes))
        audit("api_key.create", actor_key_id=None, actor_name="cli", target=f"api_key:{created.row.id}")
        return created.row.id, created.row.name, list(created.row.scopes), created.key

    key_id, key_name, key_scopes, secret = _run(work)
    if as_json:
        typer.echo(json.dumps({"id": key_id, "name": key_name, "scopes": key_scopes, "key": secret}))
        return
    typer.echo(f"created API key {key_id} {key_name!r} with scopes {','.join(key_scopes)}")
    typer.echo("key (shown once, store it now):")
    typer.echo(secret)


@keys_app.command("list")
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all/--active", help="include revoked keys")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
) -> None:
    """List keys: id, name, scopes and dates (never the keys or their hashes)."""
    from core.auth.keys import ApiKeyService

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        rows, _ = await ApiKeyService(session).page(limit=10_000, offset=0, include_revoked=include_revoked)
        return [
            {
                "id": r.id,
                "name": r.name,
                "scopes": list(r.scopes),
                "created_at": r.created_at.isoformat(),
                "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in rows
        ]

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(f"{'id':>5}  {'name':<24} {'scopes':<20} {'created_at':<26} {'last_used_at':<26} revoked_at")
    for r in rows:
        typer.echo(
            f"{r['id']:>5}  {r['name']!s:<24} {','.join(r['scopes']):<20} {r['created_at']:<26} "  # type: ignore[arg-type]
            f"{r['last_used_at'] or '-':<26} {r['revoked_at'] or '-'}"
        )


@keys_app.command("revoke")
def revoke(key_id: Annotated[int, typer.Argument(help="id of the key (see `keys list`)")]) -> None:
    """Revoke a key (idempotent). Running API processes reject it within their key cache TTL.

    The configured keys (bootstrap, console, simulator) are refused: set a new value and restart instead."""
    from core.auth.audit import audit
    from core.auth.keys import ApiKeyService

    async def work(session: AsyncSession) -> str:
        row = await ApiKeyService(session).revoke(key_id)
        audit("api_key.revoke", actor_key_id=None, actor_name="cli", target=f"api_key:{row.id}")
        return row.name

    name = _run(work)
    typer.echo(f"revoked API key {key_id} {name!r}")


@keys_app.command("generate")
def generate() -> None:
    """Print a new random key for SM_API_KEY, SM_CONSOLE_API_KEY or SM_SIMULATOR_API_KEY (nothing is stored)."""
    from core.auth.keys import generate_key

    typer.echo(generate_key())


@keys_app.command("scopes")
def scopes_help() -> None:
    """What each scope allows (``admin`` implies every other scope)."""
    from core.auth.keys import SCOPE_DESCRIPTIONS

    for scope, text in SCOPE_DESCRIPTIONS.items():
        typer.echo(f"{scope:<8} {text}")
