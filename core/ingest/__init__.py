"""Ingestion of sensor readings: parsing and validation, set-based storage, durable idempotency, group commit."""
