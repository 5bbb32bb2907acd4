"""API keys (SQL only here). Keys are looked up by the hash of the presented secret, never stored in clear."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth.models import ApiKey
from core.db.pages import fetch_page


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, *, name: str, key_hash: str, scopes: Sequence[str]) -> ApiKey:
        row = ApiKey(name=name, key_hash=key_hash, scopes=list(scopes))
        self._session.add(row)
        await self._session.flush()
        await self._session.refresh(row)
        return row

    async def get(self, key_id: int) -> ApiKey | None:
        return await self._session.get(ApiKey, key_id)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not (the equality test runs inside PostgreSQL's unique index)."""
        result = await self._session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
        return result.scalar_one_or_none()

    async def page(
        self, *, limit: int, offset: int, include_revoked: bool = True
    ) -> tuple[list[ApiKey], int]:
        conditions = [] if include_revoked else [ApiKey.revoked_at.is_(None)]
        return await fetch_page(self._session, ApiKey, conditions, (ApiKey.id,), limit=limit, offset=offset)

    async def revoke(self, key_id: int) -> ApiKey | None:
        """Set ``revoked_at`` (kept when already revoked). None when the key does not exist."""
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
            .returning(ApiKey)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none()

    async def touch(self, key_id: int, *, min_interval: timedelta) -> bool:
        """Update ``last_used_at`` unless it was updated less than ``min_interval`` ago."""
        result = await self._session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < func.now() - min_interval),
            )
            .values(last_used_at=func.now())
            .execution_options(synchronize_session=False)
        )
        return bool(cast("CursorResult[Any]", result).rowcount)  # an UPDATE's result is a CursorResult

    async def upsert_bootstrap(self, *, name: str, key_hash: str, scopes: Sequence[str]) -> ApiKey:
        """Insert the bootstrap key or refresh its name and scopes; an existing ``revoked_at`` is kept."""
        stmt = insert(ApiKey).values(name=name, key_hash=key_hash, scopes=list(scopes))
        upsert = stmt.on_conflict_do_update(
            index_elements=[ApiKey.key_hash],
            set_={"name": stmt.excluded.name, "scopes": stmt.excluded.scopes},
        ).returning(ApiKey)
        result = await self._session.execute(upsert.execution_options(populate_existing=True))
        return result.scalar_one()

    async def revoke_named_except(self, *, name: str, key_hash: str) -> list[int]:
        """Revoke every active key called ``name`` whose hash differs from ``key_hash``; their ids."""
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.name == name, ApiKey.key_hash != key_hash, ApiKey.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(ApiKey.id)
            .execution_options(synchronize_session=False)
        )
        return [int(i) for i in result.scalars()]
