"""Remaining useful life (RUL) of run-to-failure assets: NASA C-MAPSS loaders, cycle features, engine-grouped
validation with conformal intervals, the ``rul_<name>`` pyfunc, its MLflow training run and its serving from an
asset's stored readings (docs/ml/rul.md)."""
