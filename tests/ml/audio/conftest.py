"""Small WAV files written in tmp directories with soundfile (never the real datasets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16_000


def tone(freq_hz: float, seconds: float = 1.0, sr: int = SR, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def write_wav(path: Path, signal: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def generated_tree(tmp_path_factory: pytest.TempPathFactory):
    """A generated MIMII tree: 2 ids × (6 normal + 3 anomalous) clips of 2 s (one per fault kind)."""
    from core.ml.audio.generator import write_generated_dataset

    root = tmp_path_factory.mktemp("audio_generated")
    clips = write_generated_dataset(
        root, ids=(0, 2), n_normal=6, n_anomaly=3, duration_s=2.0, severity=1.0, seed=3
    )
    return root, clips
