"""An in-memory :class:`~core.ml.registry.port.ModelRegistry` for fast tests (no MLflow, no network, no disk).

It holds registered models, their versions (with the stored model object, the producing run's metrics and
``sm.*`` tags, and the version's own tags) and aliases, and behaves like the MLflow adapter on the port: the same
errors for the same situations (the contract test ``tests/ml/test_registry_contract.py`` runs the same assertions
on both). Test hooks: ``reachable = False`` makes every operation raise :class:`RegistryUnavailable`,
``failing_loads[(name, version)] = exc`` makes ``load`` raise ``exc``, and ``calls`` records every operation.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.ml.registry.port import AliasNotSet, ModelInfo, ModelNotFound, RegistryUnavailable, VersionInfo


@dataclass
class _Version:
    model: Any
    run_id: str | None
    created_at: datetime
    metrics: dict[str, float]
    run_tags: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Model:
    description: str | None = None
    versions: dict[str, _Version] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


class InMemoryRegistry:
    """:class:`~core.ml.registry.port.ModelRegistry` in a dict (thread-safe: the services call it from threads)."""

    def __init__(self) -> None:
        self.reachable = True
        self.failing_loads: dict[tuple[str, str], Exception] = {}
        self.calls: list[tuple[str, ...]] = []
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()

    # --- set-up (what training does through MLflow) --------------------------------------------------------------
    def register(
        self,
        name: str,
        model: Any,
        *,
        metrics: Mapping[str, float] | None = None,
        run_tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        """Add a version of ``name`` (creating the registered model) holding ``model``; returns its number."""
        with self._lock:
            registered = self._models.setdefault(name, _Model(description))
            version = str(len(registered.versions) + 1)
            registered.versions[version] = _Version(
                model,
                run_id=f"run-{name}-{version}",
                created_at=datetime.now(UTC),
                metrics=dict(metrics or {}),
                run_tags={k: v for k, v in (run_tags or {}).items() if k.startswith("sm.")},
            )
            return version

    # --- the port ----------------------------------------------------------------------------------------------------
    def check_reachable(self) -> None:
        self._enter("check_reachable")

    def alias_version(self, name: str, alias: str) -> str:
        with self._lock:
            self._enter("alias_version", name, alias)
            registered = self._model(name)
            if alias not in registered.aliases:
                raise AliasNotSet(f"model {name!r} has no version with the alias {alias!r}")
            return registered.aliases[alias]

    def require_version(self, name: str, version: str) -> None:
        with self._lock:
            self._enter("require_version", name, version)
            self._version(name, version)

    def load(self, name: str, version: str) -> Any:
        with self._lock:
            self._enter("load", name, version)
            stored = self._version(name, version)
            failure = self.failing_loads.get((name, version))
        if failure is not None:
            raise failure
        return stored.model

    def get_model(self, name: str) -> ModelInfo:
        with self._lock:
            self._enter("get_model", name)
            return self._info(name)

    def list_models(self) -> list[ModelInfo]:
        with self._lock:
            self._enter("list_models")
            return [self._info(name) for name in sorted(self._models)]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with self._lock:
            self._enter("set_alias", name, alias, version)
            self._version(name, version)
            self._models[name].aliases[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            self._enter("delete_alias", name, alias)
            registered = self._models.get(name)
            if registered is not None:
                registered.aliases.pop(alias, None)

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._enter("set_version_tags", name, version)
            self._version(name, version).tags.update(tags)

    # --- helpers (called with the lock held) ---------------------------------------------------------------------
    def _enter(self, *call: str) -> None:
        self.calls.append(call)
        if not self.reachable:
            raise RegistryUnavailable("the in-memory registry is unreachable")

    def _model(self, name: str) -> _Model:
        registered = self._models.get(name)
        if registered is None:
            raise ModelNotFound(f"model {name!r} does not exist in the model registry")
        return registered

    def _version(self, name: str, version: str) -> _Version:
        stored = self._model(name).versions.get(version)
        if stored is None:
            raise ModelNotFound(f"model {name!r} version {version} does not exist in the model registry")
        return stored

    def _info(self, name: str) -> ModelInfo:
        registered = self._model(name)
        versions = tuple(
            VersionInfo(
                name=name,
                version=number,
                aliases=tuple(sorted(a for a, v in registered.aliases.items() if v == number)),
                run_id=stored.run_id,
                created_at=stored.created_at,
                metrics=dict(stored.metrics),
                tags={**stored.run_tags, **stored.tags},
            )
            for number, stored in sorted(registered.versions.items(), key=lambda item: -int(item[0]))
        )
        return ModelInfo(name, dict(registered.aliases), versions, registered.description)


__all__ = ["InMemoryRegistry"]
