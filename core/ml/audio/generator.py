"""Machine-sound generator for tests and for the gauntlet's synthetic half.

Physics of a normal clip (16 kHz, float in [-1, 1]):

* **Rotating harmonics** — a shaft turning at ``f0`` Hz (machine id sets a nominal speed, each clip jitters it by
  ±1 % and adds a slow ±0.3 % speed wander) radiates tones at k·f0 (k = 1…12) with amplitudes ∝ 1/k, plus the
  blade-pass tone at ``blades``·f0 (a fan's dominant line). Phases are random per clip.
* **Broadband noise** — flow/turbulence noise: white noise shaped to a 1/f (pink) spectrum, and a structural
  resonance (second-order band-pass at ``resonance_hz``, Q≈8) excited by a small part of that noise; plus
  factory background at a fixed SNR.

Faults (one per anomalous clip, ``severity`` in (0, 1] scales all of them):

* ``impulses`` — a localised bearing defect: an impact each time a rolling element passes it, i.e. periodic
  impulses at the defect frequency (3.58·f0, an outer-race-like ratio), each ringing the structural resonance
  with an exponential decay (≈3 ms) — the classic "modulated resonance" of envelope analysis;
* ``tonal_shift`` — a changed operating point or imbalance: the shaft harmonics move up by 4–8 % and the 1×
  and 2× lines gain amplitude (mass imbalance raises 1×, misalignment 2×);
* ``rubbing`` — intermittent contact: bursts of band-limited (2–6 kHz) noise once per revolution at a random
  phase, lasting 10–25 % of the revolution, on a random ~60 % of revolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.ml.audio.io import SAMPLE_RATE, read_mimii

FAULTS = ("impulses", "tonal_shift", "rubbing")


@dataclass(frozen=True)
class MachineSpec:
    shaft_hz: float = 24.0
    blades: int = 7
    resonance_hz: float = 2_800.0
    harmonics: int = 12
    noise_level: float = 0.05
    background_snr_db: float = 25.0


def machine_spec(machine_id: int) -> MachineSpec:
    """Per-id variation of the machine (speed, blade count, resonance), deterministic in the id."""
    return MachineSpec(
        shaft_hz=20.0 + 4.0 * machine_id,
        blades=5 + 2 * (machine_id % 3),
        resonance_hz=2_400 + 350 * machine_id,
    )


def _bandpass(signal: np.ndarray, low: float, high: float, sr: int) -> NDArray[np.float64]:
    from scipy.signal import butter, sosfilt

    sos = butter(2, [low, high], btype="bandpass", fs=sr, output="sos")
    filtered: NDArray[np.float64] = sosfilt(sos, signal)
    return filtered


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=float)
    freqs[0] = 1.0
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return pink / (np.std(pink) + 1e-12)


def generate_clip(
    spec: MachineSpec,
    fault: str | None = None,
    severity: float = 1.0,
    duration_s: float = 10.0,
    sr: int = SAMPLE_RATE,
    seed: int | None = None,
) -> np.ndarray:
    """One clip of ``duration_s`` seconds (float32, peak-normalised to 0.5) of a machine with ``spec``; ``fault``
    None for a normal clip, else one of :data:`FAULTS` at ``severity``."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    t = np.arange(n) / sr
    f0 = spec.shaft_hz * (1 + rng.uniform(-0.01, 0.01))
    wander = 1 + 0.003 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0 * wander) / sr  # shaft angle
    shift, gain1, gain2 = 1.0, 1.0, 1.0
    if fault == "tonal_shift":
        shift = 1 + severity * rng.uniform(0.04, 0.08)
        gain1, gain2 = 1 + 2.0 * severity, 1 + 1.5 * severity
    tones = np.zeros(n)
    for k in range(1, spec.harmonics + 1):
        gain = gain1 if k == 1 else gain2 if k == 2 else 1.0
        tones += gain / k * np.sin(k * shift * phase + rng.uniform(0, 2 * np.pi))
    tones += 0.8 * np.sin(spec.blades * shift * phase + rng.uniform(0, 2 * np.pi))
    tones *= 0.1
    flow = spec.noise_level * _pink(n, rng)
    structure = _bandpass(rng.standard_normal(n), spec.resonance_hz / 1.06, spec.resonance_hz * 1.06, sr)
    signal = tones + flow + 0.5 * spec.noise_level * structure / (np.std(structure) + 1e-12)
    if fault == "impulses":
        defect_hz = 3.58 * f0
        times = np.arange(rng.uniform(0, 1 / defect_hz), duration_s, 1 / defect_hz)
        train = np.zeros(n)
        idx = np.minimum((times * sr).astype(int), n - 1)
        train[idx] = 1 + 0.2 * rng.standard_normal(idx.size)
        ring_t = np.arange(int(0.02 * sr)) / sr
        ring = np.exp(-ring_t / 0.003) * np.sin(2 * np.pi * spec.resonance_hz * ring_t)
        signal += 0.25 * severity * np.convolve(train, ring)[:n]
    elif fault == "rubbing":
        revolution = (phase / (2 * np.pi)) % 1.0
        turn = (phase / (2 * np.pi)).astype(int)
        active = rng.random(turn.max() + 1) < 0.6
        start = rng.uniform(0, 1, turn.max() + 1)
        width = rng.uniform(0.10, 0.25, turn.max() + 1)
        gate = active[turn] & (((revolution - start[turn]) % 1.0) < width[turn])
        burst = _bandpass(rng.standard_normal(n), 2_000, 6_000, sr)
        signal += 0.08 * severity * gate * burst / (np.std(burst) + 1e-12)
    background = rng.standard_normal(n)
    signal += background * np.std(signal) / np.sqrt(10 ** (spec.background_snr_db / 10))
    clip: NDArray[np.float32] = (0.5 * signal / (np.max(np.abs(signal)) + 1e-12)).astype(np.float32)
    return clip


def write_generated_dataset(
    root: str | PathLike[str],
    machine: str = "generated_fan",
    ids: tuple[int, ...] = (0, 2),
    n_normal: int = 12,
    n_anomaly: int = 6,
    duration_s: float = 10.0,
    severity: float = 1.0,
    seed: int = 0,
    sr: int = SAMPLE_RATE,
) -> pd.DataFrame:
    """Write a MIMII-layout tree ``<root>/<machine>/id_XX/{normal,abnormal}/*.wav`` (16-bit PCM) and return its
    clip table (:func:`core.ml.audio.io.read_mimii`). Anomalous clips cycle through :data:`FAULTS`; the fault of
    each clip is in its file name (``<index>_<fault>.wav``)."""
    import soundfile as sf

    base = Path(root)
    rng = np.random.default_rng(seed)
    for machine_id in ids:
        spec = machine_spec(machine_id)
        id_dir = base / machine / f"id_{machine_id:02d}"
        for label, count in (("normal", n_normal), ("abnormal", n_anomaly)):
            (id_dir / label).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                fault = None if label == "normal" else FAULTS[i % len(FAULTS)]
                clip = generate_clip(spec, fault, severity, duration_s, sr, seed=int(rng.integers(2**31)))
                name = f"{i:08d}.wav" if fault is None else f"{i:08d}_{fault}.wav"
                sf.write(id_dir / label / name, clip, sr, subtype="PCM_16")
    return read_mimii(base)
