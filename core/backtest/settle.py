"""When the agents count as settled after a replay: ``GET /api/v1/admin/events`` idle several polls in a row.

Agents react to each other's events (readings → anomalies → alerts → work orders): between two links of such a
chain the platform can look idle for an instant (a handler committed its new outbox row, the relay has not
claimed it yet). One idle answer is therefore not enough; ``required`` consecutive idle answers, polled some
hundred milliseconds apart, are. Any busy answer starts the count again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Consecutive idle answers that count as settled.
REQUIRED_IDLE_POLLS = 3


def is_idle(status: Mapping[str, Any]) -> bool:
    """The API's ``idle``, checked against its counts (a missing count is not idle)."""
    bus = status.get("bus") or {}
    return (
        status.get("idle") is True
        and status.get("outbox_pending") == 0
        and bus.get("queued") == 0
        and bus.get("running") == 0
    )


def describe(status: Mapping[str, Any]) -> str:
    bus = status.get("bus") or {}
    return (
        f"outbox pending {status.get('outbox_pending', '?')}, bus queued {bus.get('queued', '?')}, "
        f"running {bus.get('running', '?')}"
    )


@dataclass
class SettleTracker:
    required: int = REQUIRED_IDLE_POLLS
    streak: int = 0
    polls: int = 0

    def __post_init__(self) -> None:
        if self.required < 1:
            raise ValueError("required must be at least 1")

    def observe(self, status: Mapping[str, Any]) -> bool:
        """Record one answer; True once ``required`` idle answers came in a row."""
        self.polls += 1
        self.streak = self.streak + 1 if is_idle(status) else 0
        return self.settled

    @property
    def settled(self) -> bool:
        return self.streak >= self.required


__all__ = ["REQUIRED_IDLE_POLLS", "SettleTracker", "describe", "is_idle"]
