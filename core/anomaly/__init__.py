"""Anomaly detection: champion models from the MLflow registry, else a streaming robust_z baseline.

``detector`` scores the readings of a ``ReadingsIngested`` event and stores anomalies; ``champion`` caches the
registry's champion models (and documents the model contract); ``baseline`` holds the pure statistics.
The agent wiring is ``core/anomaly/agent.py``.
"""
