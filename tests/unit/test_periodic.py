"""core/periodic.py: when the first pass runs, a failed pass is logged and retried, stop() ends the task."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.periodic import PeriodicWorker


class Counting(PeriodicWorker):
    def __init__(self, interval_s: float, *, first_pass_at_start: bool = False, fail_first: bool = False) -> None:
        super().__init__(
            interval_s, name="test-periodic", logger=logging.getLogger("test.periodic"), what="test pass",
            first_pass_at_start=first_pass_at_start,
        )  # fmt: skip
        self.passes = 0
        self.fail_first = fail_first
        self.ran = asyncio.Event()
        self.ran_twice = asyncio.Event()

    async def run_pass(self) -> None:
        self.passes += 1
        self.ran.set()
        if self.passes >= 2:
            self.ran_twice.set()
        if self.fail_first and self.passes == 1:
            raise RuntimeError("first pass fails")


async def test_the_first_pass_waits_one_interval_unless_asked_to_run_at_start() -> None:
    waiting, at_start = Counting(3600), Counting(3600, first_pass_at_start=True)
    waiting.start()
    at_start.start()
    await asyncio.wait_for(at_start.ran.wait(), 5)
    assert (waiting.passes, at_start.passes) == (0, 1)
    await waiting.stop()
    await at_start.stop()
    assert waiting._task is None and at_start._task is None


async def test_a_failed_pass_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    worker = Counting(0.01, first_pass_at_start=True, fail_first=True)
    with caplog.at_level(logging.ERROR, logger="test.periodic"):
        worker.start()
        await asyncio.wait_for(worker.ran_twice.wait(), 5)
        await worker.stop()
    assert worker.passes >= 2
    assert any(r.getMessage() == "test pass failed" and r.exc_info for r in caplog.records)


async def test_an_interval_of_zero_disables_the_worker() -> None:
    off = Counting(0, first_pass_at_start=True)
    off.start()
    assert off._task is None
    await off.stop()


async def test_a_closed_gate_skips_the_passes_until_it_opens() -> None:
    worker = Counting(0.01, first_pass_at_start=True)
    checks = 0
    open_ = False

    def gate() -> bool:
        nonlocal checks
        checks += 1
        return open_

    worker.gate = gate
    worker.start()
    while checks < 5:
        await asyncio.sleep(0.01)
    assert worker.passes == 0
    open_ = True
    await asyncio.wait_for(worker.ran.wait(), 5)
    await worker.stop()
    assert worker.passes >= 1
