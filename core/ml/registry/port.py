"""The model registry port: what the platform needs from a model registry, and the registry's domain errors.

One adapter implements it on MLflow (:class:`core.ml.registry.mlflow_registry.MlflowRegistry`); an in-memory fake
(:class:`core.ml.registry.memory.InMemoryRegistry`) implements it for fast tests. Its users: the anomaly agent's
champion cache (:mod:`core.anomaly.champion`), the serving cache behind ``/api/v1/ml``
(:mod:`core.ml.serving.loader`), promotion and listing (:mod:`core.ml.registry.promotion`,
:mod:`core.ml.registry.listing`) and the ``models`` CLI.

Vocabulary: a registered model (``anomaly_temperature``) has numbered versions (``"1"``, ``"2"`` …, strings);
aliases (``champion``, ``challenger``; never the deprecated stages) point at versions; versions carry tags
(``sm.promotion.*``) and the metrics and ``sm.*`` tags of the run that produced them.

Every operation is blocking (network or disk): call it from a worker thread in async code. Failures are the
exceptions below, never the backend's: they are also problem-details errors (404, 409, 503) for the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.errors import AppError, Conflict, NotFound, ServiceUnavailable

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelRegistryError(AppError):
    """Base of the registry's errors."""


class RegistryFailed(ModelRegistryError, ServiceUnavailable):
    """The registry answered with an error that is not one of the domain's (a server-side failure)."""

    slug = "mlflow-unavailable"
    title = "MLflow Unavailable"


class RegistryUnavailable(RegistryFailed):
    """The registry cannot be reached (connection refused, timed out, dropped)."""


class ModelNotFound(ModelRegistryError, NotFound):
    """No registered model, or no such version of it."""

    slug = "model-not-found"
    title = "Model Not Found"


class AliasNotSet(ModelRegistryError, Conflict):
    """The registered model exists but no version carries the alias."""

    slug = "model-alias-not-set"
    title = "No Model Version For The Alias"


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version with its aliases and its run's metrics."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created_at: datetime | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    """The run's ``sm.*`` tags (family, sensor type) and the version's tags (``sm.promotion.*``)."""


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: its aliases and its versions, newest first."""

    name: str
    aliases: dict[str, str]
    """alias → version"""
    versions: tuple[VersionInfo, ...]
    description: str | None = None


class ModelRegistry(Protocol):
    """The registry operations of the platform (blocking; errors are this module's exceptions)."""

    def check_reachable(self) -> None:
        """Return at once when the registry can be reached, else raise :class:`RegistryUnavailable` quickly."""
        ...

    def alias_version(self, name: str, alias: str) -> str:
        """The version carrying ``alias``; :class:`ModelNotFound` (no such model) or :class:`AliasNotSet`."""
        ...

    def require_version(self, name: str, version: str) -> None:
        """Return when ``name`` has ``version``, else raise :class:`ModelNotFound`."""
        ...

    def load(self, name: str, version: str) -> Any:
        """The version's model, loaded (a pyfunc: ``predict(frame[, params])``, ``metadata``)."""
        ...

    def get_model(self, name: str) -> ModelInfo:
        """The registered model with every version (newest first); :class:`ModelNotFound` when missing."""
        ...

    def list_models(self) -> list[ModelInfo]:
        """Every registered model, by name."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it from another version)."""
        ...

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from the model; nothing happens when it is not set."""
        ...

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        """Set (add or overwrite) tags on the version."""
        ...


def alias_or_none(registry: ModelRegistry, name: str, alias: str) -> str | None:
    """The version carrying ``alias``, or None when the model or the alias does not exist."""
    try:
        return registry.alias_version(name, alias)
    except (ModelNotFound, AliasNotSet):
        return None


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AliasNotSet",
    "ModelInfo",
    "ModelNotFound",
    "ModelRegistry",
    "ModelRegistryError",
    "RegistryFailed",
    "RegistryUnavailable",
    "VersionInfo",
    "alias_or_none",
]
