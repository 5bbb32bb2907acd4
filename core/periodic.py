"""A background pass every few seconds: the shape of the no-data, drift and idempotency-purge workers.

``start()`` creates the task (nothing when the interval is 0: disabled); the first pass runs after one interval, or
at once with ``first_pass_at_start``; a failed pass is logged with its traceback and the next one retries;
``stop()`` cancels the task and waits for it. Subclasses implement :meth:`PeriodicWorker.run_pass`. A ``gate``
(set by whoever runs several copies, e.g. the bus workers) skips the passes while it answers False.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable


class PeriodicWorker:
    """Runs :meth:`run_pass` every ``interval_s`` seconds in one task named ``name``; 0 disables it."""

    def __init__(
        self, interval_s: float, *, name: str, logger: logging.Logger, what: str, first_pass_at_start: bool = False
    ) -> None:
        self._interval = interval_s
        self._first_pass_at_start = first_pass_at_start
        self._name = name
        self._logger = logger
        self._what = what
        self._task: asyncio.Task[None] | None = None
        self.gate: Callable[[], bool] | None = None
        """None: every pass runs; else a pass runs only when it answers True (checked at each interval)."""

    async def run_pass(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        if not self._first_pass_at_start:
            await asyncio.sleep(self._interval)
        while True:
            try:
                if self.gate is None or self.gate():
                    await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is logged; the next one retries
                self._logger.exception("%s failed", self._what)
            await asyncio.sleep(self._interval)


__all__ = ["PeriodicWorker"]
