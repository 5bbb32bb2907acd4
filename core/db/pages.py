"""One page of rows and the total that match: the count-and-select every list query of a repository runs.

Repositories build the conditions and the order of their entity (``equal_to`` turns a filter's set fields into
``column = value`` conditions); ``fetch_page`` runs the page query (``ORDER BY … LIMIT … OFFSET …``) and the count
of the same conditions in the caller's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

EntityT = TypeVar("EntityT")


def equal_to(*pairs: tuple[QueryableAttribute[Any] | ColumnElement[Any], object]) -> list[ColumnElement[bool]]:
    """``column = value`` for every (column, value) pair whose value is not None (a filter left unset)."""
    return [column == value for column, value in pairs if value is not None]


async def fetch_page(
    session: AsyncSession,
    entity: type[EntityT],
    conditions: Sequence[ColumnElement[bool]],
    order: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[list[EntityT], int]:
    """The rows of ``entity`` matching ``conditions`` in ``order`` (one page), and how many match in all."""
    rows = (
        await session.scalars(select(entity).where(*conditions).order_by(*order).limit(limit).offset(offset))
    ).all()
    total = await session.scalar(select(func.count()).select_from(entity).where(*conditions))
    return list(rows), int(total or 0)


__all__ = ["equal_to", "fetch_page"]
