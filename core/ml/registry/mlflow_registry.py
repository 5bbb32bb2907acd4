"""The one MLflow adapter of the :class:`~core.ml.registry.port.ModelRegistry` port (``MlflowClient`` on one
tracking/registry URI, ``mlflow.pyfunc.load_model``).

* An HTTP(S) tracking URI is probed with a TCP connect (bounded by ``probe_timeout_s``) before every operation, so
  an MLflow that is down costs milliseconds, not MLflow's own retry schedule (:class:`RegistryUnavailable`).
* MLflow's errors become the port's: unknown model or version → :class:`ModelNotFound`; a model without the
  alias → :class:`AliasNotSet`; a dropped connection → :class:`RegistryUnavailable`; any other MLflow error →
  :class:`RegistryFailed`. Errors of ``mlflow.pyfunc.load_model`` itself (a broken artifact) pass unchanged.
* ``mlflow`` is imported lazily: only processes that talk to the registry pay for it.

Blocking: call from a worker thread in async code.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from core.ml.registry.port import (
    AliasNotSet,
    ModelInfo,
    ModelNotFound,
    RegistryFailed,
    RegistryUnavailable,
    VersionInfo,
)

T = TypeVar("T")
MISSING_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
RunData = tuple[dict[str, float], dict[str, str]]


class MlflowRegistry:
    """:class:`~core.ml.registry.port.ModelRegistry` on ``MlflowClient(tracking_uri, registry_uri=tracking_uri)``."""

    def __init__(self, tracking_uri: str, *, probe_timeout_s: float = 2.0) -> None:
        self.tracking_uri = tracking_uri
        self.probe_timeout_s = probe_timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def for_uri(cls, tracking_uri: str | None = None) -> MlflowRegistry:
        """On ``tracking_uri``, else on ``MLFLOW_TRACKING_URI`` from the settings."""
        if tracking_uri:
            return cls(tracking_uri)
        from core.config import load_settings

        return cls(load_settings().mlflow_tracking_uri)

    # --- plumbing --------------------------------------------------------------------------------------------------
    def _mlflow(self) -> Any:
        with self._lock:
            if self._client is None:
                from mlflow import MlflowClient  # lazily: seconds of imports

                self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            return self._client

    def check_reachable(self) -> None:
        parts = urlsplit(self.tracking_uri)
        if parts.scheme not in {"http", "https"}:
            return  # file / sqlite / databricks …: the client call itself tells
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port), self.probe_timeout_s):
                pass
        except OSError as exc:
            raise RegistryUnavailable(
                f"MLflow at {parts.hostname}:{port} is unreachable ({exc.strerror or exc})"
            ) from None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Probe, run one MLflow call, map MLflow's errors to the port's (``what`` names the object in them)."""
        from mlflow.exceptions import MlflowException

        self.check_reachable()
        try:
            return fn()
        except MlflowException as exc:
            if exc.error_code in MISSING_CODES:
                raise ModelNotFound(f"{what} does not exist in the model registry") from None
            if exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc).lower():
                raise AliasNotSet(f"{what}: the alias is not set") from None
            raise RegistryFailed(f"MLflow failed on {what}: {exc.message.splitlines()[0]}") from None
        except OSError as exc:  # requests' ConnectionError is an OSError
            raise RegistryUnavailable(f"MLflow failed on {what}: {type(exc).__name__}") from None

    # --- the port --------------------------------------------------------------------------------------------------
    def alias_version(self, name: str, alias: str) -> str:
        from mlflow.exceptions import MlflowException

        def lookup() -> str:
            client = self._mlflow()
            try:
                return str(client.get_model_version_by_alias(name, alias).version)
            except MlflowException as exc:
                if exc.error_code in MISSING_CODES | {"INVALID_PARAMETER_VALUE"}:
                    client.get_registered_model(name)  # raises RESOURCE_DOES_NOT_EXIST for an unknown model
                    raise AliasNotSet(f"model {name!r} has no version with the alias {alias!r}") from None
                raise

        return self._call(f"model {name!r}", lookup)

    def require_version(self, name: str, version: str) -> None:
        self._call(f"model {name!r} version {version}", lambda: self._mlflow().get_model_version(name, version))

    def load(self, name: str, version: str) -> Any:
        import mlflow

        def download() -> str:
            uri = self._mlflow().get_model_version_download_uri(name, version)
            return str(mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=self.tracking_uri))

        local = self._call(f"model {name!r} version {version}", download)
        return mlflow.pyfunc.load_model(local)

    def get_model(self, name: str) -> ModelInfo:
        return self._call(f"model {name!r}", lambda: self._model_info(name, {}))

    def list_models(self) -> list[ModelInfo]:
        def listing() -> list[ModelInfo]:
            found = self._mlflow().search_registered_models(max_results=1000)
            cache: dict[str, RunData] = {}
            return [self._model_info(name, cache) for name in sorted(rm.name for rm in found)]

        return self._call("the model list", listing)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(
            f"model {name!r} version {version}",
            lambda: self._mlflow().set_registered_model_alias(name, alias, version),
        )

    def delete_alias(self, name: str, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        def work() -> None:
            try:
                self._mlflow().delete_registered_model_alias(name, alias)
            except MlflowException as exc:
                if exc.error_code in MISSING_CODES | {"INVALID_PARAMETER_VALUE"}:
                    return  # not set (or no such model): nothing to delete
                raise

        self._call(f"model {name!r}", work)

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        def work() -> None:
            client = self._mlflow()
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)

        self._call(f"model {name!r} version {version}", work)

    # --- listing -----------------------------------------------------------------------------------------------------
    def _model_info(self, name: str, cache: dict[str, RunData]) -> ModelInfo:
        client = self._mlflow()
        registered = client.get_registered_model(name)
        aliases = {alias: str(version) for alias, version in (registered.aliases or {}).items()}
        versions = client.search_model_versions(f"name = '{_quote(name)}'")
        infos = sorted((self._version_info(mv, aliases, cache) for mv in versions), key=lambda v: -int(v.version))
        return ModelInfo(name=name, aliases=aliases, versions=tuple(infos), description=registered.description)

    def _version_info(self, mv: Any, aliases: dict[str, str], cache: dict[str, RunData]) -> VersionInfo:
        version = str(mv.version)
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC) if mv.creation_timestamp else None
        metrics, run_tags = self._run_data(mv.run_id, cache)
        return VersionInfo(
            name=mv.name,
            version=version,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            run_id=mv.run_id,
            created_at=created,
            metrics=metrics,
            tags={**run_tags, **dict(mv.tags or {})},  # the run's sm.* tags, then the version's own
        )

    def _run_data(self, run_id: str | None, cache: dict[str, RunData]) -> RunData:
        """``(metrics, sm.* tags)`` of a version's run (empty when the run is gone)."""
        from mlflow.exceptions import MlflowException

        if not run_id:
            return {}, {}
        if run_id not in cache:
            try:
                data = self._mlflow().get_run(run_id).data
                tags = {k: v for k, v in data.tags.items() if k.startswith("sm.")}
                cache[run_id] = (dict(data.metrics), tags)
            except MlflowException:
                cache[run_id] = ({}, {})  # run deleted (or in a store we cannot read)
        return cache[run_id]


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


__all__ = ["MlflowRegistry"]
