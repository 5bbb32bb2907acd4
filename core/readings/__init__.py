"""Readings: the sensor_readings hypertable, its inserts (``repository``) and the SQL of bucketed series with the
choice of their source (``buckets``). The read side of the API (lists, series) is ``core.queries``.
"""
