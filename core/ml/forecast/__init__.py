"""Forecasting: features, models, back-tests, tuning, training and the MLflow pyfunc of the forecasters."""
