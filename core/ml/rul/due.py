"""The RUL lower-bound dates of work orders (the scheduling agent's hot path, kept cheap; used through the port
:mod:`core.maintenance.rul_due`).

When the asset of a new work order has a RUL estimate (``core.ml.rul.serving``), its due date is the earlier of
the severity's due date and the time at which the lower bound of the RUL interval is reached:
``last complete cycle + rul_lower_cycles × cycle duration`` (the median spacing of the asset's last cycles).

Cost per alert, in order, stopping at the first "no":

1. an answer cached for the asset in the process, no older than ``SM_ML_ALIAS_TTL_S`` (bounded staleness): an
   estimate, or None (not a RUL asset, or no estimate possible) — no query at all;
2. one indexed query: does the asset have a sensor whose type is a C-MAPSS channel name
   (:data:`core.ml.rul.channels.CHANNELS`)? Assets without such sensors — every asset of the platform that is not a
   run-to-failure machine — stop here (remembered for the TTL): no registry call, no model;
3. otherwise the champion of ``rul_<kind>`` from the process's :class:`~core.ml.serving.loader.ModelServer` (the
   runtime's, :func:`core.runtime.handlers`)
   (loaded once per version, the alias re-resolved at most every TTL), the last cycles read and the model run.
   A failure (no model, registry down, unmapped channel, too few cycles) is remembered for the same TTL, logged,
   and the severity's due date applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import AppError

if TYPE_CHECKING:
    from core.ml.rul.serving import RulEstimate
    from core.ml.serving.loader import ModelServer

logger = logging.getLogger("core.ml.rul.due")


class RulDueDates:
    """Per-process source of RUL lower-bound dates (module docstring)."""

    def __init__(
        self,
        server_factory: Callable[[], ModelServer],
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_assets: int = 10_000,
    ) -> None:
        self._server_factory = server_factory
        self._server: ModelServer | None = None
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_assets = max_assets
        self._cache: dict[int, tuple[RulEstimate | None, float]] = {}

    def _server_once(self) -> ModelServer:
        if self._server is None:
            self._server = self._server_factory()
        return self._server

    async def estimate(self, session: AsyncSession, asset_id: int | None) -> RulEstimate | None:
        """The asset's RUL estimate, or None (no such asset, not a RUL asset, no estimate possible)."""
        if asset_id is None:
            return None
        from core.ml.rul.channels import CHANNELS
        from core.ml.rul.repository import RulRepository

        now = self._clock()
        cached = self._cache.get(asset_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        repo = RulRepository(session)
        estimate: RulEstimate | None = None
        if await repo.has_sensor_of_types(asset_id, CHANNELS):
            from core.ml.rul.serving import estimate_asset

            try:
                estimate = await estimate_asset(repo, self._server_once(), asset_id)
            except (AppError, ValueError, OSError) as exc:
                logger.info("no RUL estimate for asset %s: %s", asset_id, exc)
        if len(self._cache) >= self._max_assets:
            self._cache.clear()
        self._cache[asset_id] = (estimate, now + self.ttl_s)
        return estimate

    async def lower_bound_at(self, session: AsyncSession, asset_id: int | None) -> datetime | None:
        """When the lower bound of the asset's RUL interval is reached, or None."""
        estimate = await self.estimate(session, asset_id)
        return None if estimate is None else estimate.lower_bound_at


__all__ = ["RulDueDates"]
