"""The RUL bound of a work order's due date: the port the scheduling policy uses, and its resolution.

When the asset of a work order has a remaining-useful-life estimate, the work order is due by the earlier of the
severity's due date and the time at which the lower bound of the RUL interval is reached
(``last complete cycle + rul_lower_cycles × cycle duration``, :mod:`core.ml.rul.serving`).

The source is the port :class:`RulBound`, injected: ``core.ml.rul`` sits above the maintenance domain in the
layers (the ML pipelines may import domains, not the reverse), so the composition root (``core.runtime.handlers``)
builds the RUL source (:class:`core.ml.rul.due.RulDueDates` on the runtime's model server) and hands it to the
scheduling agent; without one (:class:`NoRulBound`) work orders are due by severity only. The runtime's source
answers from a per-asset cache (``SM_ML_ALIAS_TTL_S``) and otherwise costs one indexed query for assets without
C-MAPSS-channel sensors; a failure never blocks a work order (the severity's date applies).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class RulBound(Protocol):
    async def lower_bound_at(self, session: AsyncSession, asset_id: int | None) -> datetime | None:
        """When the lower bound of the asset's RUL interval is reached, or None (no estimate)."""
        ...


class NoRulBound:
    """A source without estimates (RUL not available in this process)."""

    async def lower_bound_at(self, session: AsyncSession, asset_id: int | None) -> datetime | None:
        return None


def due_with_rul(severity_due: datetime, lower_bound_at: datetime | None) -> datetime:
    """The earlier of the severity's due date and the RUL lower bound's date (when there is one)."""
    return severity_due if lower_bound_at is None else min(severity_due, lower_bound_at)


__all__ = ["NoRulBound", "RulBound", "due_with_rul"]
