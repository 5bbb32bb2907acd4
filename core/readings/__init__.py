"""Readings: the sensor_readings hypertable, its hourly view and the read side
(queries over readings, anomalies and alerts).
"""
