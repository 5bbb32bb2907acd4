"""core/ml/registry/promotion.py on a temporary sqlite MLflow store: promotion by evidence, aliases only, recorded
decisions, listing and comparison, and the ``models`` CLI."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from typer.testing import CliRunner

from core.ml.eda.tracking import default_artifact_location
from core.ml.registry import promotion as registry
from core.ml.registry.uris import fluent_uri

X = np.linspace(0.0, 10.0, 50)
Y = 2.0 * X  # the truth every candidate is evaluated against


class SlopeModel(PythonModel):
    """predict(DataFrame[x]) → DataFrame[y] = slope * x; its quality depends on how far slope is from 2."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"y": self.slope * model_input["x"].to_numpy(dtype=float)})


def neg_mae(model) -> float:
    """The same evaluation for every version: minus the MAE on (X, Y) (higher is better)."""
    predicted = model.predict(pd.DataFrame({"x": X}))["y"].to_numpy()
    return -float(np.mean(np.abs(predicted - Y)))


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module (creating an MLflow sqlite schema takes seconds); each test uses its own names."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("registry-test", artifact_location=default_artifact_location(uri))
    return uri


def register(tracking_uri: str, name: str, slope: float, **metrics: float) -> str:
    with fluent_uri(tracking_uri):  # the fluent API needs the globals: restored exactly after the block
        mlflow.set_experiment("registry-test")
        with mlflow.start_run():
            if metrics:
                mlflow.log_metrics(metrics)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=SlopeModel(slope),
                registered_model_name=name,
                pip_requirements=[],
            )
    return str(info.registered_model_version)


def _client(tracking_uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def aliases(tracking_uri: str, name: str) -> dict[str, str]:
    rm = _client(tracking_uri).get_registered_model(name)
    return {alias: str(version) for alias, version in rm.aliases.items()}


def test_first_version_becomes_champion_and_decision_is_tagged(tracking_uri: str) -> None:
    v1 = register(tracking_uri, "forecast_first", slope=1.5)
    decision = registry.promote_if_better(
        "forecast_first",
        v1,
        tracking_uri=tracking_uri,
        evaluate=neg_mae,
        metric="neg_mae",
        higher_is_better=True,
    )
    assert decision.promoted
    assert decision.champion_version is None and decision.champion_score is None
    assert decision.candidate_score == pytest.approx(neg_mae_of(1.5))
    assert decision.margin == pytest.approx(0.01)  # SM_PROMOTION_MARGIN default
    assert aliases(tracking_uri, "forecast_first") == {"champion": v1}
    mv = _client(tracking_uri).get_model_version("forecast_first", v1)
    assert mv.tags["sm.promotion.decision"] == "promoted"
    assert mv.tags["sm.promotion.metric"] == "neg_mae"
    assert mv.current_stage in (None, "None")  # no deprecated stage was set


def neg_mae_of(slope: float) -> float:
    return -float(np.mean(np.abs(slope * X - Y)))


def test_worse_model_stays_challenger_and_better_one_by_margin_wins(tracking_uri: str) -> None:
    name = "forecast_demo"
    v1 = register(tracking_uri, name, slope=1.5)
    registry.promote_if_better(name, v1, tracking_uri=tracking_uri, evaluate=neg_mae)

    worse = register(tracking_uri, name, slope=1.0)
    decision = registry.promote_if_better(
        name, worse, tracking_uri=tracking_uri, evaluate=neg_mae, margin=0.01
    )
    assert not decision.promoted
    assert decision.champion_version == v1
    assert decision.candidate_score < decision.champion_score  # type: ignore[operator]
    assert aliases(tracking_uri, name) == {"champion": v1, "challenger": worse}
    tags = _client(tracking_uri).get_model_version(name, worse).tags
    assert tags["sm.promotion.decision"] == "rejected"
    assert tags["sm.promotion.champion_version"] == v1

    # better, but by less than the margin: still not promoted
    slightly = register(tracking_uri, name, slope=1.5 + 1e-4)
    decision = registry.promote_if_better(
        name, slightly, tracking_uri=tracking_uri, evaluate=neg_mae, margin=0.5
    )
    assert decision.candidate_score > decision.champion_score  # type: ignore[operator]
    assert not decision.promoted
    assert aliases(tracking_uri, name)["champion"] == v1

    better = register(tracking_uri, name, slope=2.0)
    decision = registry.promote_if_better(
        name, better, tracking_uri=tracking_uri, evaluate=neg_mae, margin=0.5
    )
    assert decision.promoted
    assert decision.candidate_score == pytest.approx(0.0)
    assert decision.champion_score == pytest.approx(neg_mae_of(1.5))
    assert aliases(tracking_uri, name) == {"champion": better}  # the challenger alias went with the win


def test_lower_is_better_metric(tracking_uri: str) -> None:
    def mae(model) -> float:
        return -neg_mae(model)

    name = "forecast_lower"
    v1 = register(tracking_uri, name, slope=2.0)
    registry.promote_if_better(name, v1, tracking_uri=tracking_uri, evaluate=mae, higher_is_better=False)
    v2 = register(tracking_uri, name, slope=1.0)
    decision = registry.promote_if_better(
        name, v2, tracking_uri=tracking_uri, evaluate=mae, higher_is_better=False
    )
    assert not decision.promoted and aliases(tracking_uri, name)["champion"] == v1


def test_unknown_prefix_without_evaluator_is_refused(tracking_uri: str) -> None:
    v1 = register(tracking_uri, "mystery_model", slope=2.0)
    with pytest.raises(registry.RegistryError, match="no evaluator"):
        registry.promote_if_better("mystery_model", v1, tracking_uri=tracking_uri)
    assert aliases(tracking_uri, "mystery_model") == {}


def test_force_list_and_compare(tracking_uri: str) -> None:
    name = "anomaly_demo"
    v1 = register(tracking_uri, name, slope=2.0, f1=0.8)
    registry.promote_if_better(name, v1, tracking_uri=tracking_uri, evaluate=neg_mae)
    v2 = register(tracking_uri, name, slope=1.0, f1=0.6)
    registry.promote_if_better(name, v2, tracking_uri=tracking_uri, evaluate=neg_mae)

    comparison = registry.compare(name, tracking_uri=tracking_uri)
    assert comparison.champion is not None and comparison.champion.version == v1
    assert comparison.challenger is not None and comparison.challenger.version == v2
    assert comparison.metrics["f1"] == (pytest.approx(0.8), pytest.approx(0.6))

    models = {m.name: m for m in registry.list_models(tracking_uri=tracking_uri)}
    assert name in models
    assert [v.version for v in models[name].versions] == [v2, v1]
    assert models[name].versions[1].aliases == ("champion",)
    assert models[name].versions[1].metrics == {"f1": pytest.approx(0.8)}

    decision = registry.force_promote(name, v2, tracking_uri=tracking_uri)
    assert decision.promoted and decision.champion_version == v1
    assert aliases(tracking_uri, name) == {"champion": v2}
    tags = _client(tracking_uri).get_model_version(name, v2).tags
    assert tags["sm.promotion.decided_by"] == "force_promote"


def test_models_cli(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.cli import app

    name = "anomaly_cli"
    v1 = register(tracking_uri, name, slope=2.0, f1=0.75)
    v2 = register(tracking_uri, name, slope=1.0, f1=0.5)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    runner = CliRunner()

    result = runner.invoke(app, ["models", "promote", name, v1, "--force"])
    assert result.exit_code == 0, result.output
    assert "champion" in result.output
    assert aliases(tracking_uri, name) == {"champion": v1}

    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert name in result.output and "champion" in result.output

    # evaluator of the anomaly_ family may not exist yet: force keeps the CLI testable on its own
    result = runner.invoke(app, ["models", "promote", name, v2, "--force"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["models", "compare", name])
    assert result.exit_code == 0, result.output
    assert "f1" in result.output and "0.5" in result.output

    result = runner.invoke(app, ["models", "compare", "no_such_model"])
    assert result.exit_code == 1
    assert "no_such_model" in result.output


def test_without_a_champion_a_serving_baseline_judges_the_first_version(tracking_uri: str) -> None:
    name = "forecast_baseline"
    worse = register(tracking_uri, name, slope=1.5)
    decision = registry.promote_if_better(
        name,
        worse,
        tracking_uri=tracking_uri,
        evaluate=neg_mae,
        margin=0.0,
        serving_baseline=lambda: neg_mae_of(1.8),  # what serves without a model
        baseline_name="baseline slope 1.8",
    )
    assert not decision.promoted
    assert decision.champion_version is None and decision.serving == "baseline slope 1.8"
    assert decision.champion_score == pytest.approx(neg_mae_of(1.8))
    assert "vs baseline slope 1.8" in decision.reason
    assert aliases(tracking_uri, name) == {"challenger": worse}
    tags = _client(tracking_uri).get_model_version(name, worse).tags
    assert (
        tags["sm.promotion.decision"] == "rejected" and tags["sm.promotion.serving"] == "baseline slope 1.8"
    )

    better = register(tracking_uri, name, slope=2.0)
    decision = registry.promote_if_better(
        name, better, tracking_uri=tracking_uri, evaluate=neg_mae, serving_baseline=lambda: neg_mae_of(1.8)
    )
    assert decision.promoted and aliases(tracking_uri, name) == {"champion": better}


def test_a_decision_callable_judges_two_figures_and_they_are_recorded(tracking_uri: str) -> None:
    def evaluate(model) -> dict[str, float]:
        predicted = model.predict(pd.DataFrame({"x": X}))["y"].to_numpy()
        return {
            "mae": float(np.mean(np.abs(predicted - Y))),
            "max_error": float(np.max(np.abs(predicted - Y))),
        }

    def decide(candidate: dict, serving: dict, serving_name: str) -> tuple[bool, str]:
        wins = all(candidate[k] <= serving[k] for k in candidate) and candidate != serving
        return wins, f"both figures vs {serving_name}: {'promoted' if wins else 'rejected'}"

    name = "forecast_two_figures"
    options = {
        "evaluate": evaluate,
        "decide": decide,
        "figures": dict,
        "metric": "mae",
        "higher_is_better": False,
    }
    v1 = register(tracking_uri, name, slope=1.5)
    first = registry.promote_if_better(
        name,
        v1,
        tracking_uri=tracking_uri,
        serving_baseline=lambda: {"mae": 99.0, "max_error": 99.0},
        **options,
    )
    assert first.promoted and first.serving == "baseline"
    assert first.serving_figures == {"mae": 99.0, "max_error": 99.0}
    v2 = register(tracking_uri, name, slope=3.0)  # worse on both
    second = registry.promote_if_better(name, v2, tracking_uri=tracking_uri, **options)
    assert not second.promoted and second.serving == f"champion v{v1}"
    assert second.candidate_score == pytest.approx(float(np.mean(np.abs(X))))  # the headline: mae
    assert second.champion_score == pytest.approx(first.candidate_score)
    tags = _client(tracking_uri).get_model_version(name, v2).tags
    assert float(tags["sm.promotion.candidate.max_error"]) == pytest.approx(10.0)
    assert float(tags["sm.promotion.serving.mae"]) == pytest.approx(first.candidate_score)
    assert tags["sm.promotion.reason"] == f"both figures vs champion v{v1}: rejected"
    assert aliases(tracking_uri, name) == {"champion": v1, "challenger": v2}
