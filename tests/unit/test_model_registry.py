"""The services on the model registry port, with the in-memory fake (core/ml/registry/memory.py): no MLflow server,
no store on disk. ModelServer (alias cache TTL, 404/409/503, predict, listing, promotion through the API's server)
and promotion on evidence (promote_if_better with a fake evaluation, force_promote). The fake keeps to the MLflow
adapter's contract: tests/ml/test_registry_contract.py."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from core.errors import Conflict, ValidationFailed
from core.ml.registry import promotion
from core.ml.registry.memory import InMemoryRegistry
from core.ml.registry.port import (
    CHALLENGER,
    CHAMPION,
    AliasNotSet,
    ModelNotFound,
    RegistryFailed,
    RegistryUnavailable,
)
from core.ml.serving.loader import ModelServer


class Slope:
    """A pyfunc-like model: ``predict(DataFrame[x]) -> DataFrame[y = slope * x]``; the truth is slope 2."""

    def __init__(self, slope: float, metadata: Any = None) -> None:
        self.slope = slope
        self.metadata = metadata
        self.params: list[Any] = []

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        self.params.append(params)
        if "x" not in frame.columns:
            raise KeyError("x")
        return pd.DataFrame({"y": self.slope * frame["x"].to_numpy(dtype=float)})


def closeness(model: Slope) -> float:
    """The fake evaluation: minus the distance of the model's slope from the truth (higher is better)."""
    return -abs(model.slope - 2.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def registry_with(name: str, *slopes: float, champion: str | None = None) -> InMemoryRegistry:
    registry = InMemoryRegistry()
    for slope in slopes:
        registry.register(name, Slope(slope), metrics={"slope": slope}, run_tags={"sm.family": "demo"})
    if champion is not None:
        registry.set_alias(name, CHAMPION, champion)
    return registry


def calls(registry: InMemoryRegistry, operation: str) -> int:
    return sum(1 for call in registry.calls if call[0] == operation)


# --- ModelServer -------------------------------------------------------------------------------------------------
async def test_the_alias_is_resolved_at_most_once_per_ttl_and_models_are_loaded_once() -> None:
    registry, clock = registry_with("demo_model", 1.0, 2.0, champion="1"), Clock()
    server = ModelServer(registry, alias_ttl_s=30.0, clock=clock)
    first = await server.get("demo_model")
    assert (first.name, first.version, first.model.slope) == ("demo_model", "1", 1.0)
    registry.set_alias("demo_model", CHAMPION, "2")  # promoted elsewhere
    clock.now = 29.0
    assert (await server.get("demo_model")).version == "1"  # within the TTL: the cached alias
    assert (calls(registry, "alias_version"), calls(registry, "load")) == (1, 1)
    clock.now = 31.0
    assert (await server.get("demo_model")).version == "2"  # the promotion reaches the API after the TTL
    assert (await server.get("demo_model", "1")).version == "1"  # a version number needs no alias lookup
    assert (calls(registry, "alias_version"), calls(registry, "load")) == (2, 2)


async def test_the_cache_keeps_at_most_cache_size_models() -> None:
    registry = registry_with("demo_model", 1.0, 2.0, 3.0)
    server = ModelServer(registry, cache_size=2)
    for version in ("1", "2", "3", "3", "1"):
        await server.get("demo_model", version)
    assert calls(registry, "load") == 4  # "1" was evicted by "3", then loaded again


@pytest.mark.parametrize(
    ("name", "ref", "error", "status", "slug"),
    [
        ("no_such_model", "champion", ModelNotFound, 404, "model-not-found"),
        ("demo_model", "champion", AliasNotSet, 409, "model-alias-not-set"),
        ("demo_model", "9", ModelNotFound, 404, "model-not-found"),
    ],
)
async def test_registry_errors_are_problems(name: str, ref: str, error: type, status: int, slug: str) -> None:
    server = ModelServer(registry_with("demo_model", 1.0))
    with pytest.raises(error) as caught:
        await server.get(name, ref)
    assert caught.value.status_code == status and caught.value.type.endswith(slug)
    assert name in caught.value.detail


async def test_an_unreachable_registry_is_503_for_every_operation() -> None:
    registry = registry_with("demo_model", 1.0, champion="1")
    registry.reachable = False
    server = ModelServer(registry)
    for operation in (server.get("demo_model"), server.list_models(), server.get_model("demo_model")):
        with pytest.raises(RegistryUnavailable) as caught:
            await operation
        assert caught.value.status_code == 503 and caught.value.type.endswith("mlflow-unavailable")


class Column:
    def __init__(self, name: str, type_: str, required: bool = True) -> None:
        self.name, self.type, self.required = name, type_, required


class Signature:
    """The part of an MLflow model signature the server reads: named input columns with their types."""

    def __init__(self, *columns: Column) -> None:
        self.inputs = list(columns)

    def get_input_schema(self) -> Signature:
        return self

    def has_input_names(self) -> bool:
        return True

    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]


async def test_predict_selects_the_signature_columns_and_maps_input_problems_to_422() -> None:
    registry = InMemoryRegistry()
    model = Slope(3.0, metadata=Signature(Column("x", "double"), Column("note", "string", required=False)))
    registry.register("demo_model", model)
    server = ModelServer(registry)
    loaded = await server.get("demo_model", "1")
    assert (loaded.input_columns, loaded.required_columns, loaded.float_columns) == (("x", "note"), ("x",), ("x",))
    output = await server.predict(loaded, pd.DataFrame({"x": [1, 2], "extra": ["a", "b"]}), {"horizon": 2})
    assert output["y"].tolist() == [3.0, 6.0] and model.params == [{"horizon": 2}]

    with pytest.raises(ValidationFailed) as missing:
        await server.predict(loaded, pd.DataFrame({"note": ["a"]}))
    assert missing.value.status_code == 422 and missing.value.extra["missing_columns"] == ["x"]

    bare = await server.get("demo_model", "1")  # a model without a signature takes anything: the model decides
    object.__setattr__(bare, "input_columns", ())
    object.__setattr__(bare, "required_columns", ())
    with pytest.raises(ValidationFailed, match="rejected the input"):
        await server.predict(bare, pd.DataFrame({"z": [1.0]}))


async def test_listing_is_cached_and_a_promotion_through_the_server_reaches_it_at_once() -> None:
    registry, clock = registry_with("demo_model", 1.0, 2.0, champion="1"), Clock()
    server = ModelServer(registry, alias_ttl_s=30.0, clock=clock)
    [listed] = await server.list_models()
    assert listed.aliases == {CHAMPION: "1"} and [v.version for v in listed.versions] == ["2", "1"]
    assert listed.versions[1].metrics == {"slope": 1.0} and listed.versions[1].tags == {"sm.family": "demo"}
    await server.list_models()
    assert calls(registry, "list_models") == 1  # cached for the TTL
    assert (await server.get("demo_model")).version == "1"

    decision = await server.promote("demo_model", "2", force=True, margin=None)
    assert decision.promoted and decision.champion_version == "1"
    assert (await server.get("demo_model")).version == "2"  # the alias cache was dropped, not waited out
    [listed] = await server.list_models()
    assert listed.aliases == {CHAMPION: "2"} and calls(registry, "list_models") == 2
    assert (await server.get_model("demo_model")).versions[0].tags["sm.promotion.decided_by"] == "force_promote"

    with pytest.raises(Conflict, match="no evaluator"):  # a promotion that cannot be judged: 409
        await server.promote("demo_model", "1", force=False, margin=0.0)
    with pytest.raises(ModelNotFound):
        await server.promote("demo_model", "9", force=True, margin=None)


# --- promotion on evidence -----------------------------------------------------------------------------------------
def aliases(registry: InMemoryRegistry, name: str) -> dict[str, str]:
    return registry.get_model(name).aliases


def tags(registry: InMemoryRegistry, name: str, version: str) -> dict[str, str]:
    [info] = [v for v in registry.get_model(name).versions if v.version == version]
    return info.tags


def test_first_version_is_promoted_a_worse_one_stays_challenger_a_better_one_wins() -> None:
    registry = registry_with("demo_model", 1.5, 1.0, 1.5 + 1e-4, 2.0)

    def promote(version: str, margin: float = 0.01) -> promotion.PromotionDecision:
        return promotion.promote_if_better(
            "demo_model", version, registry=registry, evaluate=closeness, metric="closeness", margin=margin
        )

    first = promote("1")
    assert first.promoted and first.reason == "no champion yet" and first.champion_score is None
    assert aliases(registry, "demo_model") == {CHAMPION: "1"}
    assert tags(registry, "demo_model", "1")["sm.promotion.decision"] == "promoted"

    worse = promote("2")
    assert not worse.promoted and worse.champion_version == "1"
    assert (worse.candidate_score, worse.champion_score) == (-1.0, -0.5)
    assert aliases(registry, "demo_model") == {CHAMPION: "1", CHALLENGER: "2"}
    recorded = tags(registry, "demo_model", "2")
    assert recorded["sm.promotion.decision"] == "rejected" and recorded["sm.promotion.champion_version"] == "1"
    assert recorded["sm.promotion.metric"] == "closeness" and recorded["sm.promotion.decided_by"] == (
        "promote_if_better"
    )

    slightly = promote("3", margin=0.4)  # better, by less than the margin
    assert slightly.candidate_score > slightly.champion_score and not slightly.promoted  # type: ignore[operator]

    better = promote("4", margin=0.4)
    assert better.promoted and better.candidate_score == 0.0
    assert aliases(registry, "demo_model") == {CHAMPION: "4"}  # the challenger alias went with the win


def test_a_serving_baseline_judges_the_first_version_and_a_decision_callable_is_recorded() -> None:
    registry = registry_with("demo_model", 1.5, 2.0)
    options: dict[str, Any] = {
        "registry": registry,
        "evaluate": lambda model: {"error": abs(model.slope - 2.0)},
        "decide": lambda c, s, name: (c["error"] < s["error"], f"error vs {name}"),
        "figures": dict,
        "metric": "error",
        "higher_is_better": False,
        "serving_baseline": lambda: {"error": 0.2},
        "baseline_name": "baseline slope 1.8",
        "margin": 0.0,
    }
    rejected = promotion.promote_if_better("demo_model", "1", **options)
    assert not rejected.promoted and rejected.serving == "baseline slope 1.8" and rejected.champion_version is None
    assert (rejected.candidate_figures, rejected.serving_figures) == ({"error": 0.5}, {"error": 0.2})
    assert aliases(registry, "demo_model") == {CHALLENGER: "1"}
    recorded = tags(registry, "demo_model", "1")
    assert recorded["sm.promotion.serving"] == "baseline slope 1.8"
    assert float(recorded["sm.promotion.serving.error"]) == 0.2 and recorded["sm.promotion.reason"] == (
        "error vs baseline slope 1.8"
    )
    promoted = promotion.promote_if_better("demo_model", "2", **options)
    assert promoted.promoted and aliases(registry, "demo_model") == {CHAMPION: "2"}


def test_force_promote_unknown_versions_and_models_without_an_evaluator() -> None:
    registry = registry_with("demo_model", 1.0, 2.0, champion="1")
    registry.set_alias("demo_model", CHALLENGER, "2")
    decision = promotion.force_promote("demo_model", "2", registry=registry)
    assert decision.promoted and decision.champion_version == "1" and decision.reason == "forced by an operator"
    assert aliases(registry, "demo_model") == {CHAMPION: "2"}  # the forced challenger is no longer challenging
    assert tags(registry, "demo_model", "2")["sm.promotion.decided_by"] == "force_promote"

    with pytest.raises(ModelNotFound):
        promotion.promote_if_better("demo_model", "9", registry=registry, evaluate=closeness, margin=0.0)
    with pytest.raises(ModelNotFound):
        promotion.force_promote("no_such_model", "1", registry=registry)
    with pytest.raises(promotion.RegistryError, match="no evaluator"):
        promotion.promote_if_better("demo_model", "1", registry=registry, margin=0.0)
    with pytest.raises(promotion.RegistryError, match="margin"):
        promotion.promote_if_better("demo_model", "1", registry=registry, evaluate=closeness, margin=-1.0)
    assert aliases(registry, "demo_model") == {CHAMPION: "2"}  # refused before any alias moved


def demo_rule(model_name: str) -> dict[str, Any]:
    """A family rule (``promotion.RULES``): the fake evaluation with no margin."""
    return {"evaluate": closeness, "metric": "closeness", "margin": 0.0}


def test_a_family_rule_judges_on_the_same_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(promotion.RULES, "demo_", f"{__name__}:demo_rule")
    registry = registry_with("demo_model", 2.0, 1.0)
    assert promotion.promote_if_better("demo_model", "1", registry=registry).promoted
    decision = promotion.promote_if_better("demo_model", "2", registry=registry)
    assert not decision.promoted and decision.metric == "closeness" and decision.margin == 0.0
    assert aliases(registry, "demo_model") == {CHAMPION: "1", CHALLENGER: "2"}
    comparison = promotion.compare("demo_model", registry=registry)
    assert comparison.metrics == {"slope": (2.0, 1.0)}


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda: MlflowException("artifact store: 500"), id="mlflow"),
        pytest.param(lambda: ConnectionResetError("connection reset by peer"), id="oserror"),
    ],
)
async def test_mlflow_failing_inside_a_promotion_is_a_503_not_a_500(
    monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    """What promotion does beyond the port (loading artifacts to evaluate them) may fail in MLflow: the API answers
    503 (RegistryFailed, type mlflow-unavailable) as for any registry failure, and the alias cache is still dropped."""
    registry = registry_with("demo_model", 1.0, 2.0, champion="1")
    server = ModelServer(registry, alias_ttl_s=30.0, clock=Clock())
    assert (await server.get("demo_model")).version == "1"

    def fail(*_: Any, **__: Any) -> promotion.PromotionDecision:
        raise failure()

    monkeypatch.setattr(promotion, "force_promote", fail)
    with pytest.raises(RegistryFailed, match="MLflow failed on model 'demo_model' version 2") as raised:
        await server.promote("demo_model", "2", force=True, margin=None)
    assert raised.value.status_code == 503 and raised.value.slug == "mlflow-unavailable"
    registry.set_alias("demo_model", CHAMPION, "2")
    assert (await server.get("demo_model")).version == "2"  # the cached alias was forgotten
