"""Which alerts warrant a work order, with which priority, due when."""

from __future__ import annotations

from datetime import timedelta

from core.config import Settings

#: Alert severities that warrant a work order, and the task priority each one gets.
PRIORITY_BY_SEVERITY: dict[str, str] = {"critical": "critical", "high": "high"}
PRIORITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
#: Default time to fix by severity (the agent uses the settings, see ``due_after_from_settings``).
DEFAULT_DUE_AFTER: dict[str, timedelta] = {"critical": timedelta(hours=4), "high": timedelta(hours=24)}


def due_after_from_settings(settings: Settings) -> dict[str, timedelta]:
    """Time to fix by severity from ``SM_MAINTENANCE_DUE_CRITICAL_H`` / ``SM_MAINTENANCE_DUE_HIGH_H``."""
    return {
        "critical": timedelta(hours=settings.maintenance_due_critical_h),
        "high": timedelta(hours=settings.maintenance_due_high_h),
    }


__all__ = ["DEFAULT_DUE_AFTER", "PRIORITY_BY_SEVERITY", "PRIORITY_RANK", "due_after_from_settings"]
