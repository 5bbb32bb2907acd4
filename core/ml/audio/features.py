"""Features of machine-sound clips (librosa).

* **Log-mel context vectors** — the DCASE 2020 Task 2 baseline's input: power mel spectrogram (``n_fft`` 1024,
  ``hop`` 512, 128 mel bands, 16 kHz) in dB (``10·log10(mel + eps)``), and each vector the concatenation of
  ``context`` (5) consecutive frames → ``n_mels × context`` = 640 values, one vector per frame position
  (``frames − context + 1`` per clip; a 10 s clip has 313 frames → 309 vectors).
* **MFCC statistics** — 20 MFCCs of the same log-mel spectrogram and their deltas; mean and standard deviation of
  each over the clip, or over consecutive segments of ``segment_s`` seconds (80 values per row).

Any failure (unreadable file, clip shorter than one context vector, non-finite feature) raises
:class:`FeatureExtractionError` naming the file: a run never continues on substitute data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from os import PathLike

import numpy as np
import pandas as pd

from core.ml.audio.io import SAMPLE_RATE, AudioReadError, load_wav

EPS = 1e-10


class FeatureExtractionError(RuntimeError):
    """Feature extraction of one clip failed; the message names the file."""


@dataclass(frozen=True)
class MelConfig:
    sr: int = SAMPLE_RATE
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    context: int = 5
    power: float = 2.0

    @property
    def vector_size(self) -> int:
        return self.n_mels * self.context


DEFAULT_MEL = MelConfig()


def log_mel(signal: np.ndarray, config: MelConfig = DEFAULT_MEL) -> np.ndarray:
    """Log-mel spectrogram in dB, shape (n_mels, frames)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(signal, dtype=np.float32),
        sr=config.sr,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        power=config.power,
    )
    return (20.0 / config.power * np.log10(mel + EPS)).astype(np.float32)


def context_vectors(logmel: np.ndarray, context: int = 5) -> np.ndarray:
    """Concatenate ``context`` consecutive frames: (n_mels, frames) → (frames − context + 1, n_mels·context),
    vector ``i`` = frames i … i+context−1 (frame-major, as the DCASE baseline)."""
    _, frames = logmel.shape
    count = frames - context + 1
    if count < 1:
        raise ValueError(f"{frames} frames are fewer than the context of {context}")
    return np.concatenate([logmel[:, t : t + count].T for t in range(context)], axis=1)


def mfcc_statistics(
    signal: np.ndarray, config: MelConfig = DEFAULT_MEL, n_mfcc: int = 20, segment_s: float | None = None
) -> np.ndarray:
    """Mean and std of ``n_mfcc`` MFCCs and their deltas: shape (segments, 4·n_mfcc) with columns
    [mfcc mean, mfcc std, delta mean, delta std]; one row for the whole clip when ``segment_s`` is None."""
    import librosa

    mfcc = librosa.feature.mfcc(S=log_mel(signal, config), n_mfcc=n_mfcc)
    width = mfcc.shape[1]
    delta = (
        librosa.feature.delta(mfcc, width=min(9, width if width % 2 else width - 1)) if width >= 3 else None
    )
    if delta is None:
        raise ValueError(f"{width} frames are too few for MFCC deltas")
    if segment_s is None:
        bounds = [(0, width)]
    else:
        step = max(1, round(segment_s * config.sr / config.hop_length))
        bounds = [(s, s + step) for s in range(0, width - step + 1, step)] or [(0, width)]
    rows = [
        np.concatenate(
            [mfcc[:, a:b].mean(1), mfcc[:, a:b].std(1), delta[:, a:b].mean(1), delta[:, a:b].std(1)]
        )
        for a, b in bounds
    ]
    return np.asarray(rows, dtype=np.float32)


def mfcc_feature_names(n_mfcc: int = 20) -> list[str]:
    return [
        f"{kind}_{stat}_{i:02d}"
        for kind in ("mfcc", "delta")
        for stat in ("mean", "std")
        for i in range(n_mfcc)
    ]


def _checked(path: str | PathLike[str], compute: Callable[[np.ndarray], np.ndarray], sr: int) -> np.ndarray:
    try:
        values = compute(load_wav(path, sr))
    except AudioReadError as exc:
        raise FeatureExtractionError(f"feature extraction failed for {path}: {exc}") from exc
    except Exception as exc:
        raise FeatureExtractionError(
            f"feature extraction failed for {path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not np.all(np.isfinite(values)):
        raise FeatureExtractionError(f"feature extraction failed for {path}: non-finite features")
    return values


def clip_context_vectors(path: str | PathLike[str], config: MelConfig = DEFAULT_MEL) -> np.ndarray:
    """Context vectors of one file (see module doc); raises :class:`FeatureExtractionError`."""
    return _checked(path, lambda y: context_vectors(log_mel(y, config), config.context), config.sr)


def clip_mfcc_statistics(
    path: str | PathLike[str], config: MelConfig = DEFAULT_MEL, segment_s: float | None = None
) -> np.ndarray:
    """MFCC statistics of one file; raises :class:`FeatureExtractionError`."""
    return _checked(path, lambda y: mfcc_statistics(y, config, segment_s=segment_s), config.sr)


def _progress(items: Iterable[str], desc: str, show: bool) -> Iterable[str]:
    if not show:
        return items
    from tqdm.auto import tqdm

    bar: Iterable[str] = tqdm(list(items), desc=desc, leave=False)
    return bar


def extract_context_vectors(
    paths: Iterable[str], config: MelConfig = DEFAULT_MEL, progress: bool = True
) -> dict[str, np.ndarray]:
    """Context vectors per file path (fails on the first bad file, naming it)."""
    return {p: clip_context_vectors(p, config) for p in _progress(paths, "log-mel", progress)}


def extract_mfcc_table(
    clips: pd.DataFrame, config: MelConfig = DEFAULT_MEL, segment_s: float | None = 1.0, progress: bool = True
) -> pd.DataFrame:
    """One row per clip segment: the clip's ``clip``/``machine_id``/``label`` columns plus the MFCC statistics
    (:func:`mfcc_feature_names`). Labels are carried for evaluation only; models take the feature columns."""
    frames = []
    meta = clips.set_index("path")
    for path in _progress(clips["path"], "mfcc", progress):
        stats = clip_mfcc_statistics(path, config, segment_s)
        frame = pd.DataFrame(stats, columns=mfcc_feature_names(stats.shape[1] // 4))
        for column in ("clip", "machine", "machine_id", "label"):
            frame.insert(0, column, meta.at[path, column])
        frame.insert(0, "path", path)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
