"""Anomaly models for machine sound.

Unsupervised frame models (fit on the log-mel context vectors of **normal** clips only; clip score = mean frame
score, higher = more anomalous):

* :class:`FramePCA` — standardise, PCA to ``n_components``, score = mean squared reconstruction error of the
  standardised vector (the linear counterpart of the DCASE baseline autoencoder);
* :class:`FrameGMM` — standardise, PCA to ``n_components``, Gaussian mixture on the PCA scores; score = negative
  log-likelihood of the vector: the mixture's in the subspace plus an isotropic Gaussian residual term
  ``½·‖residual‖²/σ²`` (σ² = mean squared residual per dimension on the training vectors, as probabilistic PCA) —
  without it a deviation orthogonal to the subspace would be invisible;
* :class:`FrameAutoencoder` — a small ``sklearn.neural_network.MLPRegressor`` autoencoder (bottleneck 8)
  trained to reproduce its standardised input; score = mean squared reconstruction error.

Training vectors are subsampled to ``max_vectors`` (evenly over the clips, seeded) to bound the cost on two
cores. Hyperparameters are fixed defaults chosen a priori, never tuned on evaluation clips.

Supervised comparison: :func:`random_forest_oof` — RandomForest on MFCC statistics, out-of-fold clip
probabilities from ``StratifiedGroupKFold`` grouped by clip (segments of one clip never straddle train and test).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

MODEL_KINDS = ("pca", "gmm", "ae")


class FrameModel:
    """Base of the frame models: fit on a list of per-clip (vectors, dim) arrays; score clips."""

    kind = "base"

    def __init__(self, max_vectors: int = 20_000, random_state: int = 0) -> None:
        self.max_vectors = max_vectors
        self.random_state = random_state
        self.mean_: NDArray[np.float64] | None = None
        self.scale_: NDArray[np.float64] | None = None

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_vectors": self.max_vectors, "random_state": self.random_state}

    def _stack(self, clips: Sequence[np.ndarray]) -> NDArray[np.float64]:
        if not clips:
            raise ValueError("a frame model needs at least one normal training clip")
        rng = np.random.default_rng(self.random_state)
        per_clip = max(1, self.max_vectors // len(clips))
        parts = [
            c if len(c) <= per_clip else c[np.sort(rng.choice(len(c), per_clip, replace=False))]
            for c in clips
        ]
        data = np.concatenate(parts).astype(np.float64)
        mean: NDArray[np.float64] = data.mean(0)
        scale: NDArray[np.float64] = data.std(0) + 1e-6
        self.mean_, self.scale_ = mean, scale
        return (data - mean) / scale

    def _standardise(self, vectors: np.ndarray) -> NDArray[np.float64]:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return (np.asarray(vectors, dtype=np.float64) - self.mean_) / self.scale_

    def fit(self, clips: Sequence[np.ndarray]) -> FrameModel:
        self._fit(self._stack(clips))
        return self

    def _fit(self, data: np.ndarray) -> None:
        raise NotImplementedError

    def frame_scores(self, vectors: np.ndarray) -> NDArray[np.float64]:
        raise NotImplementedError

    def score_clip(self, vectors: np.ndarray) -> float:
        return float(np.mean(self.frame_scores(vectors)))

    def score_clips(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([self.score_clip(c) for c in clips], dtype=float)


class FramePCA(FrameModel):
    kind = "pca"

    def __init__(self, n_components: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_components = n_components
        self.pca_: Any = None

    def params(self) -> dict[str, Any]:
        return super().params() | {"n_components": self.n_components}

    def _fit(self, data: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        k = min(self.n_components, data.shape[0] - 1, data.shape[1])
        self.pca_ = PCA(n_components=k, svd_solver="covariance_eigh").fit(data)

    def frame_scores(self, vectors: np.ndarray) -> NDArray[np.float64]:
        z = self._standardise(vectors)
        recon: NDArray[np.float64] = self.pca_.inverse_transform(self.pca_.transform(z))
        errors: NDArray[np.float64] = np.mean((z - recon) ** 2, axis=1)
        return errors


class FrameGMM(FrameModel):
    kind = "gmm"

    def __init__(self, n_components: int = 16, n_mixture: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_components = n_components
        self.n_mixture = n_mixture
        self.pca_: Any = None
        self.gmm_: Any = None
        self.residual_var_ = 1.0

    def params(self) -> dict[str, Any]:
        return super().params() | {"n_components": self.n_components, "n_mixture": self.n_mixture}

    def _fit(self, data: np.ndarray) -> None:
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        k = min(self.n_components, data.shape[0] - 1, data.shape[1])
        self.pca_ = PCA(n_components=k, svd_solver="covariance_eigh").fit(data)
        self.gmm_ = GaussianMixture(
            n_components=min(self.n_mixture, data.shape[0]),
            covariance_type="full",
            reg_covar=1e-3,
            random_state=self.random_state,
        ).fit(self.pca_.transform(data))
        residual = data - self.pca_.inverse_transform(self.pca_.transform(data))
        self.residual_var_ = float(np.mean(residual**2)) + 1e-9

    def frame_scores(self, vectors: np.ndarray) -> NDArray[np.float64]:
        z = self._standardise(vectors)
        scores = self.pca_.transform(z)
        residual = np.sum((z - self.pca_.inverse_transform(scores)) ** 2, axis=1)
        scored: NDArray[np.float64] = -self.gmm_.score_samples(scores) + 0.5 * residual / self.residual_var_
        return scored


class FrameAutoencoder(FrameModel):
    kind = "ae"

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 8, 64),
        max_iter: int = 20,
        max_vectors: int = 4_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_vectors=max_vectors, **kwargs)
        self.hidden = tuple(hidden)
        self.max_iter = max_iter
        self.mlp_: Any = None

    def params(self) -> dict[str, Any]:
        return super().params() | {"hidden": list(self.hidden), "max_iter": self.max_iter}

    def _fit(self, data: np.ndarray) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        self.mlp_ = MLPRegressor(
            hidden_layer_sizes=self.hidden,
            max_iter=self.max_iter,
            batch_size=256,
            learning_rate_init=1e-3,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget, as the DCASE baseline
            self.mlp_.fit(data, data)

    def frame_scores(self, vectors: np.ndarray) -> NDArray[np.float64]:
        z = self._standardise(vectors)
        recon: NDArray[np.float64] = self.mlp_.predict(z)
        errors: NDArray[np.float64] = np.mean((z - recon) ** 2, axis=1)
        return errors


def make_frame_model(kind: str, options: Mapping[str, Any] | None = None) -> FrameModel:
    classes: dict[str, type[FrameModel]] = {"pca": FramePCA, "gmm": FrameGMM, "ae": FrameAutoencoder}
    if kind not in classes:
        raise ValueError(f"unknown frame model {kind!r}; expected one of {MODEL_KINDS}")
    return classes[kind](**dict(options or {}))


def random_forest_oof(
    table: pd.DataFrame,
    feature_columns: Sequence[str],
    n_splits: int = 5,
    n_estimators: int = 300,
    random_state: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Out-of-fold anomaly probability per clip from a RandomForest on MFCC statistics.

    ``table`` has one row per clip segment with ``clip``, ``machine``, ``machine_id``, ``label`` and the feature
    columns (the label is the target, never a feature). Folds: ``StratifiedGroupKFold`` by clip, ``n_splits``
    capped at the number of clips of the rarer class (min 2). A fold whose training part holds no anomalous clip
    yields probability 0 for its clips (a classifier that has only seen normal sound predicts normal); the count
    of such folds is returned in the info dict. Clip probability = mean over its segments."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedGroupKFold

    features = list(feature_columns)
    if {"label", "clip", "machine_id"} & set(features):
        raise ValueError("label/clip/machine_id columns are not features")
    clip_labels = table.groupby("clip")["label"].first()
    rarer = int(min((clip_labels == "anomaly").sum(), (clip_labels == "normal").sum()))
    if rarer < 1:
        raise ValueError("the RandomForest comparison needs normal and anomalous clips")
    splits = max(2, min(n_splits, rarer))
    x = table[features].to_numpy(float)
    y = (table["label"] == "anomaly").to_numpy(int)
    groups = table["clip"].to_numpy()
    proba = np.zeros(len(table))
    single_class_folds = 0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only n members"
        folds = list(
            StratifiedGroupKFold(splits, shuffle=True, random_state=random_state).split(x, y, groups)
        )
    for train, test in folds:
        if y[train].min() == y[train].max():
            single_class_folds += 1
            proba[test] = float(y[train][0])
            continue
        forest = RandomForestClassifier(
            n_estimators=n_estimators, random_state=random_state, n_jobs=1, class_weight="balanced"
        ).fit(x[train], y[train])
        proba[test] = forest.predict_proba(x[test])[:, 1]
    scored = table[["clip", "machine", "machine_id", "label"]].assign(score=proba)
    clips = scored.groupby(["clip", "machine", "machine_id", "label"], as_index=False)["score"].mean()
    info = {"n_splits": splits, "single_class_folds": single_class_folds, "n_estimators": n_estimators}
    return clips, info
