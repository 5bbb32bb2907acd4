"""Running a back-test against a platform: a private one (``platform``), the API client (``client``), the run
(``runner``) and its tables (``render``). The logic without I/O is in ``core.backtest``; the command is
``apps/cli/backtest.py``."""
