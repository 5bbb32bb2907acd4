"""The registered pyfunc: contract columns, explanation, signature, promotion evaluator and registry hand-off."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.ml.ai4i import model as ai4i_model
from core.ml.ai4i.data import INPUT_COLUMNS, TARGET
from core.ml.ai4i.evaluation import fit_with_threshold
from core.ml.ai4i.features import build_features, closest_limit
from core.ml.ai4i.model import (
    MODEL_NAME,
    OUTPUT_COLUMNS,
    PROMOTION_METRIC,
    Ai4iFailureClassifier,
    evaluate_for_promotion,
    f1_on,
    holdout_split,
    input_example,
    log_and_register,
)
from core.ml.registry.uris import fluent_uri


def _fit(frame: pd.DataFrame, n_estimators: int = 40) -> Ai4iFailureClassifier:
    estimator, threshold = fit_with_threshold(
        "random_forest", build_features(frame, "engineered"), frame[TARGET], n_estimators=n_estimators
    )
    return Ai4iFailureClassifier(estimator, "engineered", threshold, "random_forest")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One temporary sqlite store for the module (each test registers under its own model name)."""
    return f"sqlite:///{tmp_path_factory.mktemp('ai4i_model') / 'mlflow.db'}"


def _register(frame: pd.DataFrame, uri: str, model: Ai4iFailureClassifier, name: str = MODEL_NAME) -> str:
    with fluent_uri(uri):
        mlflow.set_experiment("ai4i-test")
        with mlflow.start_run():
            return log_and_register(model, input_example(frame), model_name=name, metrics={"f1": 0.5})


def test_promotion_contract_constants() -> None:
    assert PROMOTION_METRIC == ("f1", True)
    assert MODEL_NAME == "ai4i_failure_classifier"


def test_registry_finds_this_family_evaluator_by_prefix() -> None:
    from core.ml.registry.promotion import resolve_evaluator

    _evaluate, metric, higher = resolve_evaluator(MODEL_NAME)
    assert (metric, higher) == PROMOTION_METRIC


def test_holdout_split_is_fixed_and_stratified(generated_ai4i: pd.DataFrame) -> None:
    dev, held = holdout_split(generated_ai4i)
    _dev2, held2 = holdout_split(generated_ai4i)
    pd.testing.assert_frame_equal(held, held2)
    assert len(held) == len(generated_ai4i) // 5 and len(dev) + len(held) == len(generated_ai4i)
    assert held[TARGET].mean() == pytest.approx(generated_ai4i[TARGET].mean(), abs=0.003)
    assert set(dev["UDI"]).isdisjoint(held["UDI"])


@pytest.mark.heavy_ml
def test_logged_pyfunc_follows_the_contract(generated_ai4i: pd.DataFrame, store: str) -> None:
    dev, held = holdout_split(generated_ai4i)
    model = _fit(dev)
    version = _register(dev, store, model)
    with fluent_uri(store):
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    signature = loaded.metadata.signature
    assert signature.inputs.input_names() == list(INPUT_COLUMNS)
    assert signature.outputs.input_names() == list(OUTPUT_COLUMNS)
    assert loaded.metadata.get_input_schema() is not None
    request = held.sample(frac=1.0, random_state=3)[list(INPUT_COLUMNS)]  # any order, labels absent
    out = loaded.predict(ai4i_model.serving_inputs(request))
    assert list(out.columns) == list(OUTPUT_COLUMNS) and len(out) == len(request)
    records = pd.DataFrame.from_records(request.head(5).to_dict("records"))  # what a JSON body becomes
    pd.testing.assert_frame_equal(loaded.predict(records), out.head(5))
    assert out["failure_probability"].between(0, 1).all()
    assert out["failure_predicted"].dtype == bool
    local = model.predict_frame(request)
    np.testing.assert_allclose(out["failure_probability"], local["failure_probability"])
    assert (out["failure_predicted"] == (local["failure_probability"] >= model.threshold)).all()
    expected = closest_limit(request.reset_index(drop=True))
    assert out["closest_limit"].tolist() == expected["closest_limit"].tolist()
    np.testing.assert_allclose(out["closest_limit_margin"], expected["closest_limit_margin"])
    # the model learned something: held-out F1 well above a constant guess, and promotion scores it the same way
    score = f1_on(loaded, held)
    assert score > 0.5
    assert score == pytest.approx(f1_on(model, held))


@pytest.mark.heavy_ml
def test_evaluate_for_promotion_scores_the_fixed_held_out_part(real_ai4i: pd.DataFrame, store: str) -> None:
    dev, held = holdout_split(real_ai4i)
    model = _fit(dev, n_estimators=30)
    version = _register(dev, store, model, "ai4i_eval_test")
    with fluent_uri(store):
        loaded = mlflow.pyfunc.load_model(f"models:/ai4i_eval_test/{version}")
    assert len(ai4i_model.promotion_data()) == 2000
    score = evaluate_for_promotion(loaded, MODEL_NAME)
    assert score == pytest.approx(f1_on(model, held))
    assert 0.6 < score <= 1.0


@pytest.mark.heavy_ml
def test_registry_promotes_only_a_better_version(generated_ai4i: pd.DataFrame, store: str) -> None:
    from core.ml.registry.promotion import promote_if_better

    dev, held = holdout_split(generated_ai4i)
    uri, name = store, "ai4i_registry_test"
    good = _register(dev, uri, _fit(dev), name)
    first = promote_if_better(
        name,
        good,
        tracking_uri=uri,
        evaluate=lambda m: f1_on(m, held),
        metric="f1",
        higher_is_better=True,
    )
    assert first.promoted and first.reason == "no champion yet"
    blind = _fit(dev)
    blind.threshold = np.inf  # never predicts a failure: F1 0
    worse = _register(dev, uri, blind, name)
    second = promote_if_better(
        name,
        worse,
        tracking_uri=uri,
        evaluate=lambda m: f1_on(m, held),
        metric="f1",
        higher_is_better=True,
    )
    assert not second.promoted
    assert second.candidate_score == 0.0 and second.champion_score == pytest.approx(first.candidate_score)
