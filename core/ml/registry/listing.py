"""Listing registered models: versions with their aliases, their runs' metrics and ``sm.*`` tags, and champion vs
challenger (read-only; promotion is :mod:`core.ml.registry.promotion`, which re-exports these names).

All functions are blocking (MLflow client calls): call them from a thread in async code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient


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
    name: str
    aliases: dict[str, str]
    """alias → version"""
    versions: tuple[VersionInfo, ...]
    description: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger of one registered model (either may be missing)."""

    name: str
    champion: VersionInfo | None
    challenger: VersionInfo | None
    metrics: dict[str, tuple[float | None, float | None]]
    """metric → (champion value, challenger value), the union of both runs' metrics."""


RunData = tuple[dict[str, float], dict[str, str]]


def _run_data(mlflow_client: MlflowClient, run_id: str | None, cache: dict[str, RunData]) -> RunData:
    """``(metrics, sm.* tags)`` of a version's run (empty when the run is gone)."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return {}, {}
    if run_id not in cache:
        try:
            data = mlflow_client.get_run(run_id).data
            tags = {k: v for k, v in data.tags.items() if k.startswith("sm.")}
            cache[run_id] = (dict(data.metrics), tags)
        except MlflowException:
            cache[run_id] = ({}, {})  # run deleted (or in a store we cannot read)
    return cache[run_id]


def _version_info(
    mlflow_client: MlflowClient, mv: Any, aliases: dict[str, str], cache: dict[str, RunData]
) -> VersionInfo:
    version = str(mv.version)
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC) if mv.creation_timestamp else None
    metrics, run_tags = _run_data(mlflow_client, mv.run_id, cache)
    return VersionInfo(
        name=mv.name,
        version=version,
        aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
        run_id=mv.run_id,
        created_at=created,
        metrics=metrics,
        tags={**run_tags, **dict(mv.tags or {})},  # the run's sm.* tags, then the version's own
    )


def get_model(
    name: str, *, tracking_uri: str | None = None, mlflow_client: MlflowClient | None = None
) -> ModelInfo:
    """One registered model with every version (newest first), its aliases and its runs' metrics."""
    from core.ml.registry.promotion import client

    mlflow_client = mlflow_client or client(tracking_uri)
    registered = mlflow_client.get_registered_model(name)
    aliases = {alias: str(version) for alias, version in (registered.aliases or {}).items()}
    cache: dict[str, RunData] = {}
    versions = mlflow_client.search_model_versions(f"name = '{_quote(name)}'")
    infos = sorted(
        (_version_info(mlflow_client, mv, aliases, cache) for mv in versions), key=lambda v: -int(v.version)
    )
    return ModelInfo(name=name, aliases=aliases, versions=tuple(infos), description=registered.description)


def list_models(
    *, tracking_uri: str | None = None, mlflow_client: MlflowClient | None = None
) -> list[ModelInfo]:
    """Every registered model (by name) with its versions, aliases and metrics."""
    from core.ml.registry.promotion import client

    mlflow_client = mlflow_client or client(tracking_uri)
    names = sorted(rm.name for rm in mlflow_client.search_registered_models(max_results=1000))
    return [get_model(name, mlflow_client=mlflow_client) for name in names]


def compare(name: str, *, tracking_uri: str | None = None) -> Comparison:
    """Champion vs challenger metrics of ``name``."""
    from core.ml.registry.promotion import CHALLENGER, CHAMPION

    info = get_model(name, tracking_uri=tracking_uri)
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


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


__all__ = ["Comparison", "ModelInfo", "VersionInfo", "compare", "get_model", "list_models"]
