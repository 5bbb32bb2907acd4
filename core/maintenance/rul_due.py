"""The RUL bound of a work order's due date: the port the scheduling policy uses, and its resolution.

When the asset of a work order has a remaining-useful-life estimate, the work order is due by the earlier of the
severity's due date and the time at which the lower bound of the RUL interval is reached
(``last complete cycle + rul_lower_cycles × cycle duration``, :mod:`core.ml.rul.serving`).

The source is :class:`RulBound`. ``core.ml.rul`` sits above the maintenance domain in the layers (the ML pipelines
may import domains, not the reverse), so the default source is named by a string and imported on first use —
the same inversion as the promotion families in :mod:`core.ml.registry.promotion` — and tests inject their own.
Its cost per alert (:mod:`core.ml.rul.due`): one indexed query for assets without C-MAPSS-channel sensors, a
cached estimate (``SM_ML_ALIAS_TTL_S``) otherwise; a failure never blocks a work order (the severity's date
applies).
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger("core.maintenance.rul_due")

#: "module:function" returning the process's default :class:`RulBound`
DEFAULT_SOURCE = "core.ml.rul.due:default_rul_due_dates"


class RulBound(Protocol):
    async def lower_bound_at(self, session: AsyncSession, asset_id: int | None) -> datetime | None:
        """When the lower bound of the asset's RUL interval is reached, or None (no estimate)."""
        ...


class NoRulBound:
    """A source without estimates (RUL not available in this process)."""

    async def lower_bound_at(self, session: AsyncSession, asset_id: int | None) -> datetime | None:
        return None


_default: RulBound | None = None


def default_rul_bound() -> RulBound:
    """The process's source (:data:`DEFAULT_SOURCE`), resolved once; :class:`NoRulBound` when it cannot be
    imported (logged)."""
    global _default
    if _default is None:
        module_name, func_name = DEFAULT_SOURCE.split(":")
        try:
            _default = getattr(importlib.import_module(module_name), func_name)()
        except ImportError as exc:
            logger.warning("RUL due dates unavailable (%s): work orders are due by severity only", exc)
            _default = NoRulBound()
    return _default


def due_with_rul(severity_due: datetime, lower_bound_at: datetime | None) -> datetime:
    """The earlier of the severity's due date and the RUL lower bound's date (when there is one)."""
    return severity_due if lower_bound_at is None else min(severity_due, lower_bound_at)


__all__ = ["DEFAULT_SOURCE", "NoRulBound", "RulBound", "default_rul_bound", "due_with_rul"]
