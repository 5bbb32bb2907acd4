"""The shipped alert rules' hysteresis, for code that evaluates detectors offline the way the alerting agent
will judge them (promotion of anomaly models, the back-test, benchmarks).

The rules themselves live in the database (migration 0005 inserts them; operators may change them); these
constants mirror the shipped values and a test keeps them equal to the migration's.
"""

from __future__ import annotations

from datetime import timedelta

from core.alerts.engine import Hysteresis

#: ``anomaly-score``: 3 outliers (robust_z or the champion model) among the sensor's last 20 readings; resolved
#: after 10 normal readings and at least 30 minutes.
ANOMALY_SCORE = Hysteresis(k=3, n=20, m=10, hold=timedelta(minutes=30))
#: ``degradation``: 6 of the last 10 readings beyond the healthy reference's trend limit.
DEGRADATION = Hysteresis(k=6, n=10, m=10, hold=timedelta(minutes=30))
#: Threshold rules (``temperature-high``, ``voltage-range``, ``kurtosis-impulsive`` …).
THRESHOLD = Hysteresis(k=3, n=20, m=10, hold=timedelta(minutes=30))
#: ``flatline``: 30 consecutive equal readings.
FLATLINE = Hysteresis(k=30, n=30, m=5, hold=timedelta(minutes=30))
#: Methods the ``anomaly-score`` rule counts.
OUTLIER_METHODS = ("robust_z", "model")

__all__ = ["ANOMALY_SCORE", "DEGRADATION", "FLATLINE", "OUTLIER_METHODS", "THRESHOLD"]
