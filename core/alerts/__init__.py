"""Alerting: rules with hysteresis turn anomalies and readings into alerts (see ``core.alerts.service``)."""
