"""Model registry and promotion on evidence (MLflow registered-model aliases; never the deprecated stages).

Contract (docs/notes ml_contracts): a new version becomes ``challenger``; it becomes ``champion`` only when it
beats what serves on the *same* evaluation (both scored by the same ``evaluate`` function): the current champion
by more than ``margin``, or, when there is no champion yet, the family's ``serving_baseline`` (what serves without a
model) when one is given — without one the first version is promoted. Every decision is recorded as tags
``sm.promotion.*`` on the candidate version.

Two ways to judge: by default ``evaluate`` returns one float and the candidate must beat the other by ``margin``
in the direction of ``higher_is_better``; with ``decide``, ``evaluate`` may return any evaluation object and
``decide(candidate, serving, serving_name) -> (promoted, reason)`` judges (several metrics, ties, …), ``figures``
turning an evaluation into the numbers recorded (``sm.promotion.candidate.<figure>`` / ``.serving.<figure>``) and
``metric`` naming the headline figure (``candidate_score`` / ``champion_score``).

When ``evaluate`` is None the family's rule is imported lazily by model-name prefix: :data:`RULES` maps a prefix
to a function ``(model_name) -> keyword arguments of promote_if_better``; otherwise :data:`EVALUATORS` maps it to
the family's ``evaluate_for_promotion(model, model_name) -> float`` (its module defines
``PROMOTION_METRIC = (metric name, higher_is_better)``).

Everything goes through the :class:`~core.ml.registry.port.ModelRegistry` port: ``registry=`` (tests pass the
in-memory fake; the API passes its own), by default the MLflow adapter on ``tracking_uri``. All functions are
blocking: call them from a thread in async code.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.ml.registry.listing import Comparison, compare, get_model, list_models, registry_for
from core.ml.registry.port import (
    CHALLENGER,
    CHAMPION,
    ModelInfo,
    ModelRegistry,
    VersionInfo,
    alias_or_none,
)

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

TAG_PREFIX = "sm.promotion."

#: model-name prefix → "module:function" returning the keyword arguments of ``promote_if_better`` for that family
RULES: dict[str, str] = {
    "anomaly_": "core.ml.anomaly.promotion:promotion_options",
}
#: model-name prefix → "module:function" of the family's evaluator (module also defines PROMOTION_METRIC)
EVALUATORS: dict[str, str] = {
    "forecast_": "core.ml.forecast.models:evaluate_for_promotion",
    "ai4i_": "core.ml.ai4i.model:evaluate_for_promotion",
    "vibration_": "core.ml.vibration.tracking:evaluate_for_promotion",
    "rul_": "core.ml.rul.model:evaluate_for_promotion",
}

Evaluator = Callable[["PyFuncModel"], float]
#: ``(candidate evaluation, serving evaluation, serving name) -> (promoted, reason)``
Decide = Callable[[Any, Any, str], tuple[bool, str]]


class RegistryError(RuntimeError):
    """A promotion cannot be carried out (no evaluator, a NaN score, a negative margin); an unknown model or version
    is the port's ``ModelNotFound``."""


@dataclass(frozen=True)
class PromotionDecision:
    model_name: str
    candidate_version: str
    champion_version: str | None
    metric: str
    higher_is_better: bool
    candidate_score: float
    champion_score: float | None
    margin: float
    promoted: bool
    reason: str
    serving: str = ""
    """What the candidate was compared with: ``champion v<N>``, the baseline's name, or "" (nothing)."""
    candidate_figures: dict[str, float] = field(default_factory=dict)
    serving_figures: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- helpers ------------------------------------------------------------------------------------------------------
def default_margin() -> float:
    from core.config import load_settings

    return load_settings().promotion_margin


def _family_target(table: dict[str, str], model_name: str, what: str) -> tuple[Any, Callable[..., Any]] | None:
    """``(module, function)`` named by the entry of ``table`` whose prefix ``model_name`` starts with, or None."""
    for prefix, target in table.items():
        if model_name.startswith(prefix):
            module_name, func_name = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise RegistryError(f"{what} module {module_name} for {model_name!r} is missing: {exc}") from exc
            return module, getattr(module, func_name)
    return None


def resolve_evaluator(model_name: str) -> tuple[Evaluator, str, bool]:
    """``(evaluate, metric, higher_is_better)`` of the family whose prefix ``model_name`` starts with."""
    found = _family_target(EVALUATORS, model_name, "evaluator")
    if found is not None:
        module, func = found
        metric, higher = module.PROMOTION_METRIC

        def evaluate(model: PyFuncModel, func: Callable[..., Any] = func) -> float:
            return float(func(model, model_name))

        return evaluate, str(metric), bool(higher)
    raise RegistryError(
        f"no evaluator for {model_name!r}: pass evaluate= or use a known prefix ({', '.join(EVALUATORS)})"
    )


def _score(evaluate: Evaluator, model: PyFuncModel, what: str) -> float:
    value = float(evaluate(model))
    if math.isnan(value):
        raise RegistryError(f"the evaluation of {what} returned NaN")
    return value


def resolve_rule(model_name: str) -> dict[str, Any] | None:
    """The keyword arguments of ``promote_if_better`` from the family rule of ``model_name`` (:data:`RULES`), or
    None when its family has none."""
    found = _family_target(RULES, model_name, "rule")
    return None if found is None else dict(found[1](model_name))


def _beats(candidate: float, champion: float, margin: float, higher_is_better: bool) -> bool:
    return candidate > champion + margin if higher_is_better else candidate < champion - margin


def _record(registry: ModelRegistry, decision: PromotionDecision, decided_by: str) -> None:
    tags = {
        "decision": "promoted" if decision.promoted else "rejected",
        "metric": decision.metric,
        "higher_is_better": str(decision.higher_is_better).lower(),
        "candidate_score": repr(decision.candidate_score),
        "champion_version": decision.champion_version or "",
        "champion_score": "" if decision.champion_score is None else repr(decision.champion_score),
        "margin": repr(decision.margin),
        "reason": decision.reason,
        "decided_by": decided_by,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if decision.serving:
        tags["serving"] = decision.serving
    for who, figures in (("candidate", decision.candidate_figures), ("serving", decision.serving_figures)):
        tags |= {f"{who}.{key}": repr(float(value)) for key, value in figures.items()}
    registry.set_version_tags(
        decision.model_name, decision.candidate_version, {TAG_PREFIX + key: value for key, value in tags.items()}
    )


# --- promotion ----------------------------------------------------------------------------------------------------
def promote_if_better(
    model_name: str,
    candidate_version: str | int,
    *,
    tracking_uri: str | None = None,
    registry: ModelRegistry | None = None,
    margin: float | None = None,
    evaluate: Callable[[PyFuncModel], Any] | None = None,
    metric: str | None = None,
    higher_is_better: bool | None = None,
    serving_baseline: Callable[[], Any] | None = None,
    baseline_name: str = "baseline",
    decide: Decide | None = None,
    figures: Callable[[Any], dict[str, float]] | None = None,
) -> PromotionDecision:
    """Make ``candidate_version`` the challenger, then the champion if it beats what serves (module docstring)."""
    registry = registry_for(tracking_uri, registry)
    candidate = str(candidate_version)
    registry.require_version(model_name, candidate)  # ModelNotFound for an unknown model/version
    if evaluate is None:
        rule = resolve_rule(model_name)
        if rule is not None:
            return promote_if_better(model_name, candidate, registry=registry, **rule)
        evaluate, family_metric, family_higher = resolve_evaluator(model_name)
        metric = metric or family_metric
        higher_is_better = family_higher if higher_is_better is None else higher_is_better
    metric = metric or "score"
    higher = True if higher_is_better is None else bool(higher_is_better)
    margin = default_margin() if margin is None else float(margin)
    if margin < 0:
        raise RegistryError(f"margin must be ≥ 0, got {margin}")
    scalar = decide is None
    decide = decide or _margin_rule(metric, higher, margin)

    def assess(version: str) -> Any:
        model = registry.load(model_name, version)
        return _score(evaluate, model, f"v{version}") if scalar else evaluate(model)

    def headline(evaluation: Any) -> float:
        return float(figures(evaluation)[metric]) if figures is not None else float(evaluation)

    registry.set_alias(model_name, CHALLENGER, candidate)
    champion = alias_or_none(registry, model_name, CHAMPION)
    candidate_eval = assess(candidate)

    serving_eval: Any = None
    serving = ""
    if champion == candidate:
        promoted, reason = True, "the candidate is already the champion"
        serving, serving_eval = f"champion v{champion}", candidate_eval
    elif champion is not None:
        serving, serving_eval = f"champion v{champion}", assess(champion)
        promoted, reason = decide(candidate_eval, serving_eval, serving)
    elif serving_baseline is not None:
        serving, serving_eval = baseline_name, serving_baseline()
        promoted, reason = decide(candidate_eval, serving_eval, serving)
    else:
        promoted, reason = True, "no champion yet"
    decision = PromotionDecision(
        model_name=model_name,
        candidate_version=candidate,
        champion_version=champion,
        metric=metric,
        higher_is_better=higher,
        candidate_score=headline(candidate_eval),
        champion_score=None if serving_eval is None else headline(serving_eval),
        margin=margin,
        promoted=bool(promoted),
        reason=reason,
        serving=serving,
        candidate_figures=dict(figures(candidate_eval)) if figures is not None else {},
        serving_figures=dict(figures(serving_eval))
        if figures is not None and serving_eval is not None
        else {},
    )
    if promoted:
        registry.set_alias(model_name, CHAMPION, candidate)
        registry.delete_alias(model_name, CHALLENGER)  # the challenger won: nothing is challenging any more
    _record(registry, decision, "promote_if_better")
    return decision


def _margin_rule(metric: str, higher: bool, margin: float) -> Decide:
    """The default decision: beat the other score by more than ``margin`` in the better direction."""

    def decide(candidate: float, serving: float, serving_name: str) -> tuple[bool, str]:
        promoted = _beats(candidate, serving, margin, higher)
        direction = "higher" if higher else "lower"
        verdict = "beats" if promoted else "does not beat"
        return promoted, (
            f"{metric} {candidate:.6g} vs {serving_name} {serving:.6g}: {verdict} it by more than {margin:g} "
            f"({direction} is better)"
        )

    return decide


def force_promote(
    model_name: str,
    version: str | int,
    *,
    tracking_uri: str | None = None,
    registry: ModelRegistry | None = None,
    reason: str = "forced by an operator",
) -> PromotionDecision:
    """Make ``version`` the champion without evaluation (recorded as such on the version)."""
    registry = registry_for(tracking_uri, registry)
    candidate = str(version)
    registry.require_version(model_name, candidate)
    champion = alias_or_none(registry, model_name, CHAMPION)
    registry.set_alias(model_name, CHAMPION, candidate)
    if alias_or_none(registry, model_name, CHALLENGER) == candidate:
        registry.delete_alias(model_name, CHALLENGER)
    decision = PromotionDecision(
        model_name=model_name,
        candidate_version=candidate,
        champion_version=champion,
        metric="",
        higher_is_better=True,
        candidate_score=math.nan,
        champion_score=None,
        margin=0.0,
        promoted=True,
        reason=reason,
    )
    _record(registry, decision, "force_promote")
    return decision


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EVALUATORS",
    "RULES",
    "Comparison",
    "Decide",
    "ModelInfo",
    "PromotionDecision",
    "RegistryError",
    "VersionInfo",
    "compare",
    "force_promote",
    "get_model",
    "list_models",
    "promote_if_better",
    "resolve_evaluator",
    "resolve_rule",
]
