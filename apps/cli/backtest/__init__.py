"""Running a back-test against a platform: a private one (``platform``), the API client (``client``), the run
(``runner``) and its tables (``render``); the ``backtest`` command itself is ``command``. The logic without I/O
is in ``core.backtest``."""
