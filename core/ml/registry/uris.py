"""MLflow's fluent API (``mlflow.start_run``, ``log_model(registered_model_name=…)``) keeps its tracking and registry
URIs in process globals and exports them as ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``. Setting only the
tracking URI leaves registrations going to whatever registry URI an earlier caller (or the environment) set, so
every training run points both at the same store, for the block only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def fluent_uri(uri: str) -> Iterator[None]:
    """Point the fluent API's tracking and registry at ``uri`` for the block, then restore the previous state
    exactly (globals and environment variables)."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {key: os.environ.get(key) for key in _ENV}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def point_fluent_api_at(uri: str) -> None:
    """Point the fluent API's tracking and registry at ``uri`` for the rest of the process (a notebook kernel)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
