"""``python -m apps.cli models promote rul_*`` goes through the family evaluator of the registry
(``core.ml.registry.promotion.EVALUATORS["rul_"]`` → :func:`core.ml.rul.model.evaluate_for_promotion`): the RMSE
of the version on the fixed promotion engines' cuts of FD001, lower is better, on a temporary sqlite MLflow."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.ml.eda.tracking import default_artifact_location
from core.ml.registry.promotion import resolve_evaluator
from core.ml.registry.uris import fluent_uri
from core.ml.rul.model import PROMOTION_METRIC, RulModel, promotion_data, rmse_on


def _register(uri: str, name: str, model: RulModel, example: pd.DataFrame) -> str:
    with fluent_uri(uri):
        mlflow.set_experiment("rul-promotion-test")
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model", python_model=model, registered_model_name=name, metadata=model.metadata(),
                input_example=example, pip_requirements=[],
            )  # fmt: skip
    return str(info.registered_model_version)


def test_registry_resolves_the_rul_evaluator() -> None:
    _evaluate, metric, higher = resolve_evaluator("rul_turbofan")
    assert (metric, higher) == PROMOTION_METRIC == ("rmse", False)


def test_models_promote_cli_scores_a_rul_version_on_the_promotion_engines(
    small_model: RulModel, fd001: pd.DataFrame, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.cli import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).create_experiment(
        "rul-promotion-test", artifact_location=default_artifact_location(uri)
    )
    name = "rul_promotion_cli"
    example = fd001[fd001["unit"] == 1].loc[:, ["unit", "cycle", *small_model.channels]].head(12)
    v1 = _register(uri, name, small_model, example)
    v2 = _register(uri, name, small_model, example)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    runner = CliRunner()

    result = runner.invoke(app, ["models", "promote", name, v1])
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert dict(client.get_registered_model(name).aliases) == {"champion": int(v1)}
    tags = client.get_model_version(name, v1).tags
    expected = rmse_on(small_model, *promotion_data())
    assert tags["sm.promotion.metric"] == "rmse" and tags["sm.promotion.higher_is_better"] == "false"
    assert float(tags["sm.promotion.candidate_score"]) == pytest.approx(expected, rel=1e-9)

    # the same model again does not beat the champion by the margin: challenger only
    result = runner.invoke(app, ["models", "promote", name, v2])
    assert result.exit_code == 0, result.output
    aliases = dict(client.get_registered_model(name).aliases)
    assert aliases["champion"] == int(v1) and aliases.get("challenger") == int(v2)
    tags = client.get_model_version(name, v2).tags
    assert tags["sm.promotion.decision"] == "rejected"
    assert float(tags["sm.promotion.champion_score"]) == pytest.approx(expected, rel=1e-9)
