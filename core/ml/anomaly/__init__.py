"""Anomaly models: training, evaluation, promotion and the MLflow pyfunc of the anomaly detectors."""
