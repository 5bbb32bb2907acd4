"""The ModelRegistry port's contract, the same assertions on the in-memory fake (core/ml/registry/memory.py) and on
the MLflow adapter (core/ml/registry/mlflow_registry.py) over a temporary sqlite MLflow store, so the fake the fast
service tests use cannot drift from what production does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel

from core.ml.eda.tracking import default_artifact_location
from core.ml.registry.memory import InMemoryRegistry
from core.ml.registry.mlflow_registry import MlflowRegistry
from core.ml.registry.port import (
    CHALLENGER,
    CHAMPION,
    AliasNotSet,
    ModelNotFound,
    ModelRegistry,
    RegistryUnavailable,
    alias_or_none,
)
from core.ml.registry.uris import fluent_uri
from tests.support.servers import CLOSED_HTTP_URL

EXPERIMENT = "registry-contract"


class Slope:
    """A loaded model as the services see it: ``predict(DataFrame[x]) -> DataFrame[y]``."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return pd.DataFrame({"y": self.slope * frame["x"].to_numpy(dtype=float)})


class SlopePyFunc(PythonModel):  # type: ignore[misc]
    """The same model as an MLflow pyfunc (what training logs)."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return Slope(self.slope).predict(model_input)


Register = Callable[..., str]
"""``register(name, slope, metrics={...}, run_tags={...}) -> version``: what training does."""


@dataclass
class Backend:
    registry: ModelRegistry
    register: Register


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module (creating an MLflow sqlite schema takes seconds); each test uses its own names."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment(EXPERIMENT, artifact_location=default_artifact_location(uri))
    return uri


def mlflow_backend(uri: str) -> Backend:
    def register(
        name: str, slope: float, metrics: dict[str, float] | None = None, run_tags: dict[str, str] | None = None
    ) -> str:
        with fluent_uri(uri):
            mlflow.set_experiment(EXPERIMENT)
            with mlflow.start_run():
                mlflow.log_metrics(metrics or {})
                mlflow.set_tags(run_tags or {})
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=SlopePyFunc(slope), registered_model_name=name, pip_requirements=[]
                )
        return str(info.registered_model_version)

    return Backend(MlflowRegistry(uri), register)


def memory_backend() -> Backend:
    registry = InMemoryRegistry()

    def register(
        name: str, slope: float, metrics: dict[str, float] | None = None, run_tags: dict[str, str] | None = None
    ) -> str:
        return registry.register(name, Slope(slope), metrics=metrics, run_tags=run_tags)

    return Backend(registry, register)


@pytest.fixture(params=["memory", "mlflow"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield memory_backend()
    else:
        yield mlflow_backend(request.getfixturevalue("sqlite_uri"))


def unique(backend: Backend, stem: str) -> str:
    """A model name of its own per backend (the sqlite store is shared by the module)."""
    return f"{stem}_{type(backend.registry).__name__.lower()}"


def test_versions_aliases_and_their_errors(backend: Backend) -> None:
    registry, name = backend.registry, unique(backend, "contract_aliases")
    registry.check_reachable()
    with pytest.raises(ModelNotFound):
        registry.alias_version(name, CHAMPION)
    assert alias_or_none(registry, name, CHAMPION) is None
    with pytest.raises(ModelNotFound):
        registry.require_version(name, "1")
    with pytest.raises(ModelNotFound):
        registry.get_model(name)

    v1 = backend.register(name, 1.0)
    v2 = backend.register(name, 2.0)
    assert (v1, v2) == ("1", "2")
    registry.require_version(name, v2)
    with pytest.raises(ModelNotFound):
        registry.require_version(name, "9")
    with pytest.raises(AliasNotSet):
        registry.alias_version(name, CHAMPION)
    assert alias_or_none(registry, name, CHAMPION) is None

    registry.set_alias(name, CHAMPION, v1)
    registry.set_alias(name, CHALLENGER, v2)
    assert registry.alias_version(name, CHAMPION) == v1
    registry.set_alias(name, CHAMPION, v2)  # an alias moves
    assert registry.alias_version(name, CHAMPION) == v2
    assert registry.get_model(name).aliases == {CHAMPION: v2, CHALLENGER: v2}

    registry.delete_alias(name, CHALLENGER)
    registry.delete_alias(name, CHALLENGER)  # not set any more: nothing happens
    registry.delete_alias(unique(backend, "contract_nobody"), CHAMPION)  # no such model: nothing happens
    with pytest.raises(AliasNotSet):
        registry.alias_version(name, CHALLENGER)
    assert registry.get_model(name).aliases == {CHAMPION: v2}


def test_listing_metrics_tags_and_loading(backend: Backend) -> None:
    registry, name = backend.registry, unique(backend, "contract_listing")
    other = unique(backend, "contract_listing_other")
    v1 = backend.register(name, 0.5, metrics={"f1": 0.8}, run_tags={"sm.family": "demo", "owner": "ignored"})
    v2 = backend.register(name, 3.0)
    backend.register(other, 1.0)
    registry.set_alias(name, CHAMPION, v1)
    registry.set_version_tags(name, v1, {"sm.promotion.decision": "promoted", "sm.promotion.metric": "f1"})

    info = registry.get_model(name)
    assert info.name == name and info.aliases == {CHAMPION: v1}
    assert [v.version for v in info.versions] == [v2, v1]  # newest first
    newest, oldest = info.versions
    assert (newest.aliases, oldest.aliases) == ((), (CHAMPION,))
    assert (newest.metrics, oldest.metrics) == ({}, {"f1": pytest.approx(0.8)})
    assert oldest.tags == {  # the run's sm.* tags, then the version's own
        "sm.family": "demo",
        "sm.promotion.decision": "promoted",
        "sm.promotion.metric": "f1",
    }
    assert newest.run_id and oldest.run_id and newest.run_id != oldest.run_id
    assert oldest.created_at is not None and oldest.name == name

    listed = [m.name for m in registry.list_models()]
    assert listed == sorted(listed) and {name, other} <= set(listed)

    model = registry.load(name, v2)
    assert model.predict(pd.DataFrame({"x": [1.0, 2.0]}))["y"].tolist() == [3.0, 6.0]
    with pytest.raises(ModelNotFound):
        registry.load(name, "9")
    with pytest.raises(ModelNotFound):
        registry.set_version_tags(name, "9", {"sm.x": "1"})


def test_an_unreachable_registry(backend: Backend) -> None:
    if isinstance(backend.registry, InMemoryRegistry):
        backend.registry.reachable = False
        registry: ModelRegistry = backend.registry
    else:
        registry = MlflowRegistry(CLOSED_HTTP_URL, probe_timeout_s=0.5)
    for operation in (
        registry.check_reachable,
        lambda: registry.alias_version("anomaly_temperature", CHAMPION),
        lambda: registry.load("anomaly_temperature", "1"),
        registry.list_models,
    ):
        with pytest.raises(RegistryUnavailable) as caught:
            operation()
        assert caught.value.status_code == 503
