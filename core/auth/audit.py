"""Audit log of administrative actions: one structured log line per action (logger ``sm.audit``).

Each line carries the actor (API key id and name, or ``cli``), the action, its target and the
correlation id of the request (added to every record by the logging configuration).
"""

from __future__ import annotations

import logging
from typing import Any

audit_logger = logging.getLogger("sm.audit")


def audit(action: str, *, actor_key_id: int | None, actor_name: str, target: str, **details: Any) -> None:
    audit_logger.info(
        "audit %s %s by %s",
        action,
        target,
        actor_name,
        extra={
            "audit": True,
            "action": action,
            "target": target,
            "actor_key_id": actor_key_id,
            "actor_name": actor_name,
            **details,
        },
    )
