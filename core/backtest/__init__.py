"""Back-test: replay a plant's own history (a wide CSV) through the platform and report what it would have done.

Pure logic only (no HTTP, no processes); ``apps/cli/backtest/`` runs it against a platform and holds the command
(``python -m apps.cli backtest``, docs/architecture/backtest.md).

* ``core.backtest.specs``    — the command-line specs: column selection, asset pattern, sensor types, time zone;
  the plan of sensors (id, asset, type, unit) per selected column.
* ``core.backtest.frame``    — reading the CSV (pandas): timestamps, time order, ``--end``, empty cells, batches of
  whole rows as ingest readings.
* ``core.backtest.report``   — the report (first anomaly / alert / work order per sensor, the work orders) built
  from the API's JSON.
* ``core.backtest.settle``   — when the agents count as settled (idle for several polls in a row).
* ``core.backtest.alert_quality`` — injected fault episodes against the alerts and work orders of a simulated run
  (``make bench-alerts``): detection, work orders per episode, false work orders per fault-free sensor-day.

Nothing here imports pandas at package import: ``frame`` does, and only the command loads it.
"""
