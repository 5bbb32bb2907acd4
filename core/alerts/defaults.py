"""The shipped ``anomaly-score`` rule's hysteresis, for code that evaluates detectors offline the way the alerting
agent will judge them (promotion of anomaly models and the episodes it scores).

The rule itself lives in the database (migration 0005 inserts it; operators may change it); this constant mirrors
the shipped values and ``tests/api/test_alerting_api.py::test_default_rules_are_seeded`` keeps it equal to the
seeded rule.
"""

from __future__ import annotations

from datetime import timedelta

from core.alerts.engine import Hysteresis

#: ``anomaly-score``: 3 outliers (robust_z or the champion model) among the sensor's last 20 readings; resolved
#: after 10 normal readings and at least 30 minutes.
ANOMALY_SCORE = Hysteresis(k=3, n=20, m=10, hold=timedelta(minutes=30))

__all__ = ["ANOMALY_SCORE"]
