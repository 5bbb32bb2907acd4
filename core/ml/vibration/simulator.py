"""Physics-based bearing vibration simulator (for tests, the gauntlet's detection study and the diagnosis grid).

A recording is the sum of

* shaft harmonics: k × the shaft frequency fr = rpm/60 (unbalance 1×, misalignment 2×, looseness 3× and up),
  amplitudes 0.05/0.02/0.01 g for k = 1..3 and 0.01/(k−2) g beyond (``shaft_harmonics``, ``shaft_scale``).
  Mechanical looseness makes many harmonics; their beats put lines at multiples of fr into the envelope, the
  lines an inner-race sideband test must not mistake for modulation;
* optionally a gear mesh (``mesh_order`` teeth on the shaft, ``mesh_amp`` g): lines at j·order·fr (j = 1..3,
  amplitude 1/j) with ±fr sidebands (30 %), the deterministic masking that cepstral pre-whitening removes;
* a defect: impacts repeating at the defect frequency (BPFO for an outer-race spall, BPFI for an inner-race
  spall, 2·BSF for a rolling-element spall, which strikes the outer and the inner race once each per spin
  revolution) with random slip of the period (``slip``, ~1 % for real bearings); each impact rings a structural
  resonance (damped sinusoid, ``resonance_hz``, decay time ``decay_s``). Physics of the impact amplitude:

  - ``severity`` (g) is the peak impact amplitude; larger spalls (CWRU 0.007 → 0.021 in) give larger impacts;
  - load zone: the radial load is carried by the rolling elements within ±``load_zone_deg`` of the load
    direction, with the Stribeck distribution q(θ) = (1 − (1 − cos θ)/(1 − cos θ_max))^1.5 (0 outside). The impact
    amplitude is severity · (1 − ``load_zone_depth`` + ``load_zone_depth`` · q(θ)), where θ is the spall's angle
    from the load direction: for an inner-race spall it turns with the shaft (θ = 2π·fr·t: modulation at fr), for
    a ball spall it turns with the cage (θ = 2π·FTF·t: modulation at FTF), for an outer-race spall it is fixed at
    ``outer_angle_deg`` (0 = centre of the load zone, CWRU "6:00"; 90 = "3:00"; 180 = "12:00", unloaded: only the
    unloaded depth fraction remains). A heavier motor load widens and deepens the load zone; with
    ``load_zone_deg`` None the legacy smooth profile q(θ) = (1 + cos θ)/2 is used;
  - a ball spall strikes the outer race and the inner race alternately; the inner-race strike travels through
    more interfaces to the sensor, so it is weaker by ``ball_inner_ratio`` (1: equal strikes, BSF lines vanish;
    below 1: odd BSF harmonics appear). The ball's spin axis wanders, so a ball spall does not hit on every
    pass: each strike happens with probability ``strike_prob`` and its amplitude varies log-normally by
    ``amp_jitter`` (σ of log amplitude; also usable for any family);
* random knocks (``knocks_per_s``, amplitude ``knock_amp`` g): transients at Poisson times ringing the same
  resonance, impulsive but at no bearing rate (a false lead for a kurtosis-only detector);
* Gaussian measurement noise (``noise_sd`` g).

Operating conditions of the diagnosis grid (:mod:`core.ml.vibration.diagnosis_report`) follow the CWRU rig:
motor load 0–3 HP slows the shaft (1797, 1772, 1750, 1730 rpm) and widens the load zone.

:func:`simulate_run` strings recordings into a run to failure: 4 bearings, one of them developing the defect at a
known file ``onset`` whose impact amplitude grows exponentially to ``final_severity`` at the last file, while the
noise level drifts slowly from file to file (operating variation) and rises with damage late in life.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import signal as sps

from core.ml.vibration.bearings import IMS_RPM, REXNORD_ZA_2115, BearingGeometry

FAULTS = ("none", "outer", "inner", "ball")
FAULT_NAMES = {"none": "none", "outer": "outer race", "inner": "inner race", "ball": "ball"}


def impact_rate(fault: str, geometry: BearingGeometry, rpm: float) -> float:
    """Impacts per second of a defect: BPFO, BPFI or 2·BSF."""
    f = geometry.frequencies(rpm)
    rates = {"outer": f["bpfo"], "inner": f["bpfi"], "ball": 2 * f["bsf"]}
    if fault not in rates:
        raise ValueError(f"fault must be one of {sorted(rates)}, got {fault!r}")
    return rates[fault]


@dataclass(frozen=True)
class DefectPhysics:
    """Impact-amplitude physics of a defect (see the module doc); the defaults reproduce the original simulator
    (smooth load zone, depth 0.8 → amplitude 0.6 + 0.4·cos θ, equal strikes, every pass)."""

    load_zone_depth: float = 0.8
    load_zone_deg: float | None = None
    outer_angle_deg: float = 0.0
    ball_inner_ratio: float = 1.0
    strike_prob: float = 1.0
    amp_jitter: float = 0.0

    def load_profile(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """q(θ) in [0, 1]: the share of the peak load on a rolling element at angle θ from the load direction."""
        if self.load_zone_deg is None:
            smooth: NDArray[np.float64] = 0.5 * (1 + np.cos(theta))
            return smooth
        c_max = np.cos(np.radians(self.load_zone_deg))
        arg = 1 - (1 - np.cos(theta)) / (1 - c_max)
        stribeck: NDArray[np.float64] = np.clip(arg, 0, None) ** 1.5
        return stribeck

    def factor(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = 1 - self.load_zone_depth + self.load_zone_depth * self.load_profile(theta)
        return out


def simulate_signal(
    fault: str = "none",
    *,
    fs: float = 12_000.0,
    rpm: float = 1797.0,
    geometry: BearingGeometry | None = None,
    n_samples: int = 24_000,
    severity: float = 0.5,
    noise_sd: float = 0.05,
    shaft_scale: float = 1.0,
    shaft_harmonics: int = 3,
    mesh_order: int | None = None,
    mesh_amp: float = 0.0,
    resonance_hz: float | None = None,
    decay_s: float = 0.0008,
    slip: float = 0.01,
    physics: DefectPhysics | None = None,
    knocks_per_s: float = 0.0,
    knock_amp: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """One simulated recording (1-D, ``n_samples`` at ``fs``). ``severity`` = peak impact amplitude in g.
    ``resonance_hz`` defaults to fs/4 (inside the default envelope band 0.1–0.4·fs)."""
    from core.ml.vibration.bearings import SKF_6205

    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
    geometry = geometry or SKF_6205
    rng = np.random.default_rng(rng)
    t = np.arange(n_samples) / fs
    fr = rpm / 60.0
    x = np.zeros(n_samples)
    for k in range(1, shaft_harmonics + 1):
        amp = (0.05, 0.02, 0.01)[k - 1] if k <= 3 else 0.01 / (k - 2)
        if k * fr < fs / 2:
            x += shaft_scale * amp * np.sin(2 * np.pi * k * fr * t + rng.uniform(0, 2 * np.pi))
    if mesh_order and mesh_amp > 0:
        for j in (1, 2, 3):
            for side, rel in ((0, 1.0), (-1, 0.3), (1, 0.3)):
                f = j * mesh_order * fr + side * fr
                if f < fs / 2:
                    x += mesh_amp / j * rel * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    x += rng.normal(0.0, noise_sd, n_samples)
    physics = physics or DefectPhysics()
    if fault != "none" and severity > 0:
        x += _impacts(fault, fs, rpm, geometry, n_samples, severity, resonance_hz, decay_s, slip, rng, physics)
    if knocks_per_s > 0 and knock_amp > 0:
        count = rng.poisson(knocks_per_s * n_samples / fs)
        train = np.zeros(n_samples)
        np.add.at(train, rng.integers(0, n_samples, count), knock_amp * rng.uniform(0.5, 1.0, count))
        x += _ring(train, fs, resonance_hz, decay_s)
    return x


def defect_impacts(
    fault: str,
    *,
    fs: float,
    rpm: float,
    geometry: BearingGeometry,
    n_samples: int,
    severity: float,
    resonance_hz: float | None = None,
    decay_s: float = 0.0008,
    slip: float = 0.01,
    physics: DefectPhysics | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """The defect term of :func:`simulate_signal` alone (no shaft harmonics, no noise): impacts of peak amplitude
    ``severity`` repeating at the defect frequency, each ringing the resonance (default fs/4)."""
    if fault not in FAULTS[1:]:
        raise ValueError(f"fault must be one of {FAULTS[1:]}, got {fault!r}")
    rng = np.random.default_rng(rng)
    return _impacts(
        fault, fs, rpm, geometry, n_samples, severity, resonance_hz, decay_s, slip, rng, physics or DefectPhysics()
    )


def _ring(train: NDArray[np.float64], fs: float, resonance_hz: float | None, decay_s: float) -> NDArray[np.float64]:
    f_res = resonance_hz or fs / 4
    th = np.arange(int(8 * decay_s * fs)) / fs
    ring = np.exp(-th / decay_s) * np.sin(2 * np.pi * f_res * th)
    response: NDArray[np.float64] = sps.fftconvolve(train, ring)
    return response[: len(train)]


def _impacts(
    fault: str,
    fs: float,
    rpm: float,
    geometry: BearingGeometry,
    n_samples: int,
    severity: float,
    resonance_hz: float | None,
    decay_s: float,
    slip: float,
    rng: np.random.Generator,
    physics: DefectPhysics,
) -> np.ndarray:
    rate = impact_rate(fault, geometry, rpm)
    period = 1.0 / rate
    count = int(n_samples / fs * rate) + 2
    times = rng.uniform(0, period) + np.arange(count) * period + rng.normal(0, slip * period, count)
    keep = (times >= 0) & (times < n_samples / fs)
    strikes = np.arange(count)[keep]
    times = times[keep]
    amps = np.full(times.shape, severity)
    if fault == "inner":
        amps *= physics.factor(2 * np.pi * rpm / 60.0 * times)
    elif fault == "ball":
        amps *= physics.factor(2 * np.pi * geometry.frequencies(rpm)["ftf"] * times)
        amps[strikes % 2 == 1] *= physics.ball_inner_ratio
        if physics.strike_prob < 1:
            amps *= rng.random(len(amps)) < physics.strike_prob
    else:
        amps *= physics.factor(np.array([np.radians(physics.outer_angle_deg)]))[0]
    if physics.amp_jitter > 0:
        amps *= np.exp(rng.normal(0, physics.amp_jitter, len(amps)) - physics.amp_jitter**2 / 2)
    train = np.zeros(n_samples)
    np.add.at(train, (times * fs).astype(int), amps)
    return _ring(train, fs, resonance_hz, decay_s)


@dataclass
class SimulatedRun:
    """A simulated run to failure; ``files`` is shaped like :func:`core.ml.vibration.readers.list_ims_run`."""

    files: pd.DataFrame
    onset: int  # index of the first file with a defect
    faulty_bearing: int  # 1-based
    fault: str
    fs: float
    rpm: float
    geometry: BearingGeometry
    severities: np.ndarray  # impact amplitude per file of the faulty bearing (0 before the onset)
    noise_levels: np.ndarray  # (files, bearings) noise SD
    n_samples: int
    seed: int

    def recording(self, index: int) -> np.ndarray:
        """File ``index`` as a (samples, bearings) array; deterministic for a given run and index."""
        rng = np.random.default_rng([self.seed, index])
        columns = []
        for b in range(self.noise_levels.shape[1]):
            faulty = b + 1 == self.faulty_bearing and self.severities[index] > 0
            columns.append(
                simulate_signal(
                    self.fault if faulty else "none",
                    fs=self.fs,
                    rpm=self.rpm,
                    geometry=self.geometry,
                    n_samples=self.n_samples,
                    severity=float(self.severities[index]) if faulty else 0.0,
                    noise_sd=float(self.noise_levels[index, b]),
                    rng=rng,
                )
            )
        return np.column_stack(columns)


def simulate_run(
    n_files: int = 120,
    onset: int = 70,
    *,
    fault: str = "outer",
    faulty_bearing: int = 1,
    n_bearings: int = 4,
    fs: float = 20_000.0,
    rpm: float = IMS_RPM,
    geometry: BearingGeometry = REXNORD_ZA_2115,
    n_samples: int = 20_480,
    final_severity: float = 1.0,
    growth: float = 4.0,
    noise_sd: float = 0.05,
    drift: float = 0.01,
    file_minutes: float = 10.0,
    seed: int = 0,
) -> SimulatedRun:
    """A run of ``n_files`` recordings ``file_minutes`` apart; the defect starts at file ``onset`` with impact
    amplitude ``final_severity · (exp(growth·u) − 1) / (exp(growth) − 1)``, u = 0 at the onset … 1 at the last
    file. Noise SD follows a slow multiplicative random walk (``drift`` per file, mean-reverting) and, on the
    faulty bearing, rises by up to 50 % with damage."""
    if not 0 < onset < n_files - 1:
        raise ValueError("onset must lie strictly inside the run")
    if fault not in FAULTS[1:]:
        raise ValueError(f"fault must be one of {FAULTS[1:]}")
    rng = np.random.default_rng(seed)
    idx = np.arange(n_files)
    u = np.clip((idx - onset) / (n_files - 1 - onset), 0, None)
    severities = np.where(idx >= onset, final_severity * np.expm1(growth * u) / np.expm1(growth), 0.0)
    severities[onset] = max(severities[onset], final_severity * 1e-3)
    log_noise = np.zeros((n_files, n_bearings))
    for i in range(1, n_files):
        log_noise[i] = 0.9 * log_noise[i - 1] + rng.normal(0, drift, n_bearings)
    noise = noise_sd * np.exp(log_noise)
    noise[:, faulty_bearing - 1] *= 1 + 0.5 * severities / final_severity
    start = pd.Timestamp("2020-01-01 00:00:00")
    stamps = start + pd.to_timedelta(idx * file_minutes, unit="min")
    files = pd.DataFrame(
        {
            "file_index": idx,
            "file": [s.strftime("%Y.%m.%d.%H.%M.%S") for s in stamps],
            "path": "",
            "timestamp": stamps,
            "hours_from_start": idx * file_minutes / 60.0,
            "hours_to_end": (n_files - 1 - idx) * file_minutes / 60.0,
        }
    )
    return SimulatedRun(
        files, onset, faulty_bearing, fault, fs, rpm, geometry, severities, noise, n_samples, seed
    )
