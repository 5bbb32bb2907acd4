"""The machine-sound generator: its physics is visible in the signal, and the unsupervised model separates
generated faulty clips from normal ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfilt
from scipy.stats import kurtosis

from core.ml.audio.generator import FAULTS, MachineSpec, generate_clip

SR = 16_000


def _spectrum(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.fft.rfftfreq(signal.size, 1 / SR), np.abs(np.fft.rfft(signal))


def test_normal_clip_has_the_shaft_and_blade_pass_lines() -> None:
    spec = MachineSpec(shaft_hz=30.0, blades=7)
    clip = generate_clip(spec, duration_s=2.0, seed=1)
    assert clip.dtype == np.float32 and clip.size == 32_000
    assert np.max(np.abs(clip)) == pytest.approx(0.5, rel=1e-3)
    freqs, mag = _spectrum(clip)
    low = (freqs > 10) & (freqs < 400)
    peak = freqs[low][np.argmax(mag[low])]
    assert abs(peak - 30.0) < 1.5 or abs(peak - 210.0) < 4  # 1× shaft or the blade-pass line (7×)
    blade = (freqs > 200) & (freqs < 222)
    assert mag[blade].max() > 20 * np.median(mag[(freqs > 400) & (freqs < 1000)])


def test_faults_change_the_signal_as_their_physics_says() -> None:
    spec = MachineSpec()
    normal = generate_clip(spec, duration_s=2.0, seed=5)
    impulses = generate_clip(spec, "impulses", duration_s=2.0, seed=5)
    sos = butter(4, [2_400, 3_200], btype="bandpass", fs=SR, output="sos")  # around the structural resonance
    assert kurtosis(sosfilt(sos, impulses)) > kurtosis(sosfilt(sos, normal)) + 1  # ringing impacts: impulsive
    rubbing = generate_clip(spec, "rubbing", duration_s=2.0, seed=5)
    freqs, mag_r = _spectrum(rubbing)
    _, mag_n = _spectrum(normal)
    band = (freqs > 3_000) & (freqs < 6_000)
    assert (mag_r[band] ** 2).sum() / (mag_r**2).sum() > 2 * (mag_n[band] ** 2).sum() / (mag_n**2).sum()
    shifted = generate_clip(spec, "tonal_shift", duration_s=2.0, seed=5)
    freqs, mag_s = _spectrum(shifted)
    low = (freqs > 10) & (freqs < 60)
    assert freqs[low][np.argmax(mag_s[low])] > 1.03 * spec.shaft_hz  # the 1× line moved up
    with pytest.raises(ValueError, match="unknown fault"):
        generate_clip(spec, "meltdown")


def test_generated_tree_layout(generated_tree) -> None:
    root, clips = generated_tree
    assert len(clips) == 18
    assert set(clips["machine"]) == {"generated_fan"}
    anomalies = clips[clips["label"] == "anomaly"]
    assert sorted({p.rsplit("/", 1)[-1].split("_", 1)[1][:-4] for p in anomalies["path"]}) == sorted(FAULTS)
    assert (root / "generated_fan" / "id_02" / "abnormal").is_dir()


@pytest.mark.heavy_ml
def test_unsupervised_model_separates_generated_faults(generated_tree) -> None:
    from core.ml.audio.evaluation import evaluate_frame_model
    from core.ml.audio.features import extract_context_vectors

    _, clips = generated_tree
    vectors = extract_context_vectors(clips["path"], progress=False)
    evaluation = evaluate_frame_model(clips, vectors, "pca", n_folds=3)
    assert len(evaluation.clip_scores) == len(clips)
    assert evaluation.by_id["auc"].min() > 0.8, evaluation.by_id
    gmm = evaluate_frame_model(clips, vectors, "gmm", n_folds=3)
    assert gmm.by_id["auc"].min() > 0.7, gmm.by_id
