"""Data drift per sensor: the statistics, the drift_checks table, its repository and the drift agent."""
