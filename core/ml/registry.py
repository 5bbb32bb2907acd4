"""Model registry and promotion on evidence (MLflow registered-model aliases; never the deprecated stages).

Contract (docs/notes ml_contracts): a new version becomes ``challenger``; it becomes ``champion`` only when it
beats the current champion by more than ``margin`` on the *same* evaluation (both loaded and scored by the same
``evaluate`` function), or when there is no champion yet. Every decision is recorded as tags ``sm.promotion.*`` on
the candidate version.

When ``evaluate`` is None the family's evaluator is imported lazily by model-name prefix
(:data:`EVALUATORS`): each family module exposes ``evaluate_for_promotion(model, model_name) -> float`` and
``PROMOTION_METRIC = (metric name, higher_is_better)``.

All functions are blocking (MLflow client calls): call them from a thread in async code.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.ml.eda_tracking import resolve_tracking_uri
from core.ml.registry_listing import Comparison, ModelInfo, VersionInfo, compare, get_model, list_models

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.pyfunc import PyFuncModel

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_PREFIX = "sm.promotion."

#: model-name prefix → "module:function" of the family's evaluator (module also defines PROMOTION_METRIC)
EVALUATORS: dict[str, str] = {
    "anomaly_": "core.ml.anomaly_models:evaluate_for_promotion",
    "forecast_": "core.ml.forecast_models:evaluate_for_promotion",
    "ai4i_": "core.ml.ai4i.model:evaluate_for_promotion",
    "vibration_": "core.ml.vibration.tracking:evaluate_for_promotion",
}

Evaluator = Callable[["PyFuncModel"], float]


class RegistryError(RuntimeError):
    """A registry operation cannot be carried out (unknown model/version, no evaluator, bad score)."""


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- helpers ------------------------------------------------------------------------------------------------------
def client(tracking_uri: str | None = None) -> MlflowClient:
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def default_margin() -> float:
    from core.config import load_settings

    return load_settings().promotion_margin


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


def alias_version(mlflow_client: MlflowClient, name: str, alias: str) -> str | None:
    """The version carrying ``alias``, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise


def resolve_evaluator(model_name: str) -> tuple[Evaluator, str, bool]:
    """``(evaluate, metric, higher_is_better)`` of the family whose prefix ``model_name`` starts with."""
    for prefix, target in EVALUATORS.items():
        if model_name.startswith(prefix):
            module_name, func_name = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise RegistryError(
                    f"evaluator module {module_name} for {model_name!r} is missing: {exc}"
                ) from exc
            func = getattr(module, func_name)
            metric, higher = module.PROMOTION_METRIC

            def evaluate(model: PyFuncModel, func: Callable[..., Any] = func) -> float:
                return float(func(model, model_name))

            return evaluate, str(metric), bool(higher)
    raise RegistryError(
        f"no evaluator for {model_name!r}: pass evaluate= or use a known prefix ({', '.join(EVALUATORS)})"
    )


def load_version(mlflow_client: MlflowClient, name: str, version: str) -> PyFuncModel:
    import mlflow

    uri = mlflow_client.get_model_version_download_uri(name, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=mlflow_client.tracking_uri)
    return mlflow.pyfunc.load_model(local)


def _score(evaluate: Evaluator, model: PyFuncModel, what: str) -> float:
    value = float(evaluate(model))
    if math.isnan(value):
        raise RegistryError(f"the evaluation of {what} returned NaN")
    return value


def _beats(candidate: float, champion: float, margin: float, higher_is_better: bool) -> bool:
    return candidate > champion + margin if higher_is_better else candidate < champion - margin


def _record(mlflow_client: MlflowClient, decision: PromotionDecision, decided_by: str) -> None:
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
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(
            decision.model_name, decision.candidate_version, TAG_PREFIX + key, value
        )


# --- promotion ----------------------------------------------------------------------------------------------------
def promote_if_better(
    model_name: str,
    candidate_version: str | int,
    *,
    tracking_uri: str | None = None,
    margin: float | None = None,
    evaluate: Callable[[PyFuncModel], float] | None = None,
    metric: str | None = None,
    higher_is_better: bool | None = None,
) -> PromotionDecision:
    """Make ``candidate_version`` the challenger, then the champion if it beats the current one by ``margin``."""
    mlflow_client = client(tracking_uri)
    candidate = str(candidate_version)
    mlflow_client.get_model_version(model_name, candidate)  # raises for an unknown model/version
    if evaluate is None:
        evaluate, family_metric, family_higher = resolve_evaluator(model_name)
        metric = metric or family_metric
        higher_is_better = family_higher if higher_is_better is None else higher_is_better
    metric = metric or "score"
    higher = True if higher_is_better is None else bool(higher_is_better)
    margin = default_margin() if margin is None else float(margin)
    if margin < 0:
        raise RegistryError(f"margin must be ≥ 0, got {margin}")

    mlflow_client.set_registered_model_alias(model_name, CHALLENGER, candidate)
    champion = alias_version(mlflow_client, model_name, CHAMPION)
    candidate_score = _score(evaluate, load_version(mlflow_client, model_name, candidate), f"v{candidate}")

    champion_score: float | None = None
    if champion is None:
        promoted, reason = True, "no champion yet"
    elif champion == candidate:
        promoted, reason = True, "the candidate is already the champion"
        champion_score = candidate_score
    else:
        champion_score = _score(evaluate, load_version(mlflow_client, model_name, champion), f"v{champion}")
        promoted = _beats(candidate_score, champion_score, margin, higher)
        direction = "higher" if higher else "lower"
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"{metric} {candidate_score:.6g} vs champion v{champion} {champion_score:.6g}: {verdict} it by more "
            f"than {margin:g} ({direction} is better)"
        )
    decision = PromotionDecision(
        model_name=model_name,
        candidate_version=candidate,
        champion_version=champion,
        metric=metric,
        higher_is_better=higher,
        candidate_score=candidate_score,
        champion_score=champion_score,
        margin=margin,
        promoted=promoted,
        reason=reason,
    )
    if promoted:
        mlflow_client.set_registered_model_alias(model_name, CHAMPION, candidate)
        # the challenger won: nothing is challenging any more
        _drop_alias(mlflow_client, model_name, CHALLENGER)
    _record(mlflow_client, decision, "promote_if_better")
    return decision


def _drop_alias(mlflow_client: MlflowClient, name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise


def force_promote(
    model_name: str,
    version: str | int,
    *,
    tracking_uri: str | None = None,
    reason: str = "forced by an operator",
) -> PromotionDecision:
    """Make ``version`` the champion without evaluation (recorded as such on the version)."""
    mlflow_client = client(tracking_uri)
    candidate = str(version)
    mlflow_client.get_model_version(model_name, candidate)
    champion = alias_version(mlflow_client, model_name, CHAMPION)
    mlflow_client.set_registered_model_alias(model_name, CHAMPION, candidate)
    if alias_version(mlflow_client, model_name, CHALLENGER) == candidate:
        _drop_alias(mlflow_client, model_name, CHALLENGER)
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
    _record(mlflow_client, decision, "force_promote")
    return decision


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EVALUATORS",
    "Comparison",
    "ModelInfo",
    "PromotionDecision",
    "RegistryError",
    "VersionInfo",
    "alias_version",
    "client",
    "compare",
    "force_promote",
    "get_model",
    "list_models",
    "load_version",
    "promote_if_better",
    "resolve_evaluator",
]
