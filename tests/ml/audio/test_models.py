"""Frame-model wrappers, the cross-fitting protocol, the RandomForest comparison and the pyfunc model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ml.audio.evaluation import assign_folds, evaluate_frame_model, fit_final
from core.ml.audio.models import FrameAutoencoder, FrameGMM, FramePCA, make_frame_model, random_forest_oof


def _clips(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[np.ndarray]:
    """Vectors on a 3-dimensional subspace of R^40 (plus small noise); ``shift`` leaves the subspace."""
    basis = np.random.default_rng(99).normal(size=(3, 40))
    out = []
    for _ in range(n):
        latent = rng.normal(size=(50, 3))
        vectors = latent @ basis + 0.05 * rng.normal(size=(50, 40))
        vectors[:, 0] += shift * rng.normal(size=50)
        out.append(vectors.astype(np.float32))
    return out


@pytest.mark.parametrize(
    "model",
    [
        FramePCA(n_components=3),
        FrameGMM(n_components=3, n_mixture=2),
        FrameAutoencoder(hidden=(16, 3, 16), max_iter=200),
    ],
    ids=["pca", "gmm", "ae"],
)
def test_frame_models_score_off_manifold_clips_higher(model) -> None:
    rng = np.random.default_rng(0)
    model.fit(_clips(rng, 8))
    normal = model.score_clips(_clips(rng, 4))
    anomalous = model.score_clips(_clips(rng, 4, shift=2.0))
    assert normal.shape == (4,)
    assert anomalous.min() > normal.max()


def test_frame_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown frame model"):
        make_frame_model("svm")
    with pytest.raises(ValueError, match="at least one"):
        FramePCA().fit([])
    with pytest.raises(RuntimeError, match="not fitted"):
        FramePCA().score_clip(np.zeros((3, 4)))


def _table(n_normal: int, n_anomaly: int, ids=("id_00",), split: str = "") -> pd.DataFrame:
    rows = []
    for machine_id in ids:
        for label, count in (("normal", n_normal), ("anomaly", n_anomaly)):
            for i in range(count):
                rows.append(
                    {
                        "path": f"/x/{machine_id}/{label}/{i}.wav",
                        "machine": "fan",
                        "machine_id": machine_id,
                        "label": label,
                        "split": split,
                        "clip": f"fan/{machine_id}/{label}/{i}.wav",
                    }
                )
    return pd.DataFrame(rows)


def test_crossfit_scores_every_clip_once_with_a_model_that_never_saw_it() -> None:
    clips = _table(6, 2, ids=("id_00", "id_02"))
    rng = np.random.default_rng(1)
    vectors = dict(zip(clips["path"], _clips(rng, len(clips)), strict=True))
    for path in clips.loc[clips["label"] == "anomaly", "path"]:
        vectors[path] = _clips(rng, 1, shift=3.0)[0]
    folds = assign_folds(clips, n_folds=3, seed=0)
    assert sorted(folds.unique()) == [0, 1, 2]
    evaluation = evaluate_frame_model(clips, vectors, "pca", {"n_components": 3}, n_folds=3)
    assert sorted(evaluation.clip_scores["clip"]) == sorted(clips["clip"])
    assert evaluation.params["protocol"] == "crossfit_3"
    assert (evaluation.by_id["auc"] == 1.0).all()
    metrics = evaluation.metrics()
    assert metrics["auc_fan_id_00"] == 1.0 and metrics["mean_auc"] == 1.0
    final = fit_final(clips, vectors, evaluation, "fan", {"n_components": 3})
    assert final.n_training_clips == 12
    normal_oof = evaluation.clip_scores.query("label == 'normal'")["score"]
    assert normal_oof.min() <= final.threshold <= normal_oof.max()


def test_dcase_split_trains_on_train_and_scores_only_test() -> None:
    train = _table(5, 0, split="train")
    test = _table(2, 2, split="test").assign(
        path=lambda f: f["path"].str.replace("/x/", "/t/"), clip=lambda f: "test/" + f["clip"]
    )
    clips = pd.concat([train, test], ignore_index=True)
    rng = np.random.default_rng(2)
    vectors = dict(zip(clips["path"], _clips(rng, len(clips)), strict=True))
    evaluation = evaluate_frame_model(clips, vectors, "pca", {"n_components": 3})
    assert set(evaluation.clip_scores["path"]) == set(test["path"])
    assert evaluation.params["protocol"] == "dcase_split"


def test_crossfit_needs_two_normal_clips_per_id() -> None:
    with pytest.raises(ValueError, match="at least 2 normal"):
        assign_folds(_table(1, 1), n_folds=5)


def test_random_forest_is_grouped_by_clip_and_never_sees_labels_as_features() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for label, count, centre in (("normal", 10, 0.0), ("anomaly", 5, 3.0)):
        for i in range(count):
            for segment in range(3):
                rows.append(
                    {
                        "clip": f"{label}/{i}",
                        "machine": "fan",
                        "machine_id": "id_00",
                        "label": label,
                        "f0": centre + rng.normal(),
                        "f1": rng.normal(),
                        "segment": segment,
                    }
                )
    table = pd.DataFrame(rows)
    clips, info = random_forest_oof(table, ["f0", "f1"], n_splits=5, n_estimators=50)
    assert len(clips) == 15 and clips["clip"].is_unique
    assert info["n_splits"] == 5 and info["single_class_folds"] == 0
    y = (clips["label"] == "anomaly").to_numpy()
    assert clips.loc[y, "score"].mean() > clips.loc[~y, "score"].mean() + 0.3
    with pytest.raises(ValueError, match="not features"):
        random_forest_oof(table, ["f0", "label"])


def test_pyfunc_scores_paths_and_round_trips_through_mlflow(tmp_path: Path, generated_tree) -> None:
    import mlflow

    from core.ml.audio.evaluation import FittedAudioModel
    from core.ml.audio.features import FeatureExtractionError, extract_context_vectors
    from core.ml.audio.pyfunc import AudioAnomalyModel, signature_and_example

    _, clips = generated_tree
    normal = clips[(clips["machine_id"] == "id_00") & (clips["label"] == "normal")]["path"].tolist()
    vectors = extract_context_vectors(normal[:4], progress=False)
    model = FramePCA(n_components=8).fit(list(vectors.values()))
    fitted = FittedAudioModel("generated_fan", model, threshold=1.0, n_training_clips=4)
    signature, _ = signature_and_example(normal[0])
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=AudioAnomalyModel(fitted), signature=signature)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    paths = normal[4:6]
    out = loaded.predict(pd.DataFrame({"path": paths}))
    assert list(out.columns) == ["score", "is_anomaly"] and len(out) == 2
    expected = [model.score_clip(extract_context_vectors([p], progress=False)[p]) for p in paths]
    np.testing.assert_allclose(out["score"], expected, rtol=1e-5)
    assert (out["is_anomaly"] == (out["score"] > 1.0)).all()
    with pytest.raises(FeatureExtractionError, match="missing.wav"):
        AudioAnomalyModel(fitted).score_paths([str(tmp_path / "missing.wav")])
