"""Settling: idle for REQUIRED_IDLE_POLLS answers in a row; any busy answer starts again."""

from __future__ import annotations

import pytest

from core.backtest.settle import REQUIRED_IDLE_POLLS, SettleTracker, describe, is_idle

IDLE = {"outbox_pending": 0, "bus": {"queued": 0, "running": 0}, "idle": True}
BUSY = {"outbox_pending": 2, "bus": {"queued": 0, "running": 1}, "idle": False}


def test_three_idle_answers_in_a_row() -> None:
    assert REQUIRED_IDLE_POLLS == 3
    tracker = SettleTracker()
    assert [tracker.observe(s) for s in (IDLE, IDLE, BUSY, IDLE, IDLE)] == [False] * 5
    assert tracker.observe(IDLE) is True
    assert tracker.polls == 6


def test_idle_flag_must_agree_with_the_counts() -> None:
    assert is_idle(IDLE)
    assert not is_idle(BUSY)
    assert not is_idle({**IDLE, "outbox_pending": 1})  # inconsistent answer: not idle
    assert not is_idle({"idle": True})  # counts missing
    assert describe(BUSY) == "outbox pending 2, bus queued 0, running 1"
    with pytest.raises(ValueError):
        SettleTracker(required=0)
