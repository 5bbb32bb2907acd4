"""Listing registered models: versions with their aliases, their runs' metrics and ``sm.*`` tags, and champion vs
challenger (read-only; promotion is :mod:`core.ml.registry.promotion`, which re-exports these names).

Through the :class:`~core.ml.registry.port.ModelRegistry` port: ``registry=`` (tests pass the in-memory fake), by
default the MLflow adapter on ``tracking_uri``. All functions are blocking: call them from a thread in async code.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.ml.registry.mlflow_registry import MlflowRegistry
from core.ml.registry.port import CHALLENGER, CHAMPION, ModelInfo, ModelRegistry, VersionInfo


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger of one registered model (either may be missing)."""

    name: str
    champion: VersionInfo | None
    challenger: VersionInfo | None
    metrics: dict[str, tuple[float | None, float | None]]
    """metric → (champion value, challenger value), the union of both runs' metrics."""


def registry_for(tracking_uri: str | None = None, registry: ModelRegistry | None = None) -> ModelRegistry:
    """``registry`` when given, else the MLflow registry on ``tracking_uri`` (default: ``MLFLOW_TRACKING_URI``)."""
    return registry if registry is not None else MlflowRegistry.for_uri(tracking_uri)


def get_model(name: str, *, tracking_uri: str | None = None, registry: ModelRegistry | None = None) -> ModelInfo:
    """One registered model with every version (newest first), its aliases and its runs' metrics."""
    return registry_for(tracking_uri, registry).get_model(name)


def list_models(*, tracking_uri: str | None = None, registry: ModelRegistry | None = None) -> list[ModelInfo]:
    """Every registered model (by name) with its versions, aliases and metrics."""
    return registry_for(tracking_uri, registry).list_models()


def compare(name: str, *, tracking_uri: str | None = None, registry: ModelRegistry | None = None) -> Comparison:
    """Champion vs challenger metrics of ``name``."""
    info = get_model(name, tracking_uri=tracking_uri, registry=registry)
    by_version = {v.version: v for v in info.versions}
    champion = by_version.get(info.aliases.get(CHAMPION, ""))
    challenger = by_version.get(info.aliases.get(CHALLENGER, ""))
    keys = sorted(set(champion.metrics if champion else {}) | set(challenger.metrics if challenger else {}))
    metrics = {
        key: (
            champion.metrics.get(key) if champion else None,
            challenger.metrics.get(key) if challenger else None,
        )
        for key in keys
    }
    return Comparison(name=name, champion=champion, challenger=challenger, metrics=metrics)


__all__ = ["Comparison", "ModelInfo", "VersionInfo", "compare", "get_model", "list_models", "registry_for"]
