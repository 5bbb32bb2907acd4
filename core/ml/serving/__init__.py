"""ML serving behind /api/v1/ml: registered models from MLflow, cached, their schemas and service."""
