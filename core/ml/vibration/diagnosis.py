"""Bearing diagnosis without training: pre-whitening, kurtogram band, squared envelope spectrum, family evidence.

The steps follow the envelope-analysis benchmark of Smith & Randall (2015) on the CWRU data:

1. **Cepstral pre-whitening** (:mod:`core.ml.vibration.cepstrum`): X / |X|, so that shaft, gear-mesh and
   electrical lines no longer dominate.
2. **Candidate bands**: the fast kurtogram (:mod:`core.ml.vibration.kurtogram`) of the whitened signal *and* of
   the raw signal, each giving its most impulsive band, the ``bands_per_level`` most impulsive bands of every
   level and the full band, among bands wide enough (≥ ``harmonics``·max rate + 2·shaft frequency) to carry the
   fault rates; plus the classic resonance band :data:`CLASSIC_BAND` (0.1–0.4·fs) of both signals. Whitening
   brings out impacts masked by discrete lines; the raw signal keeps the weight of the structural resonance that
   the impacts ring, which whitening flattens -- some records show their defect only in one of the two.
   ``band=(low, high)`` replaces the search by that band (of both signals).
3. **Squared envelope spectrum** (SES) of every candidate band (CPW + SES, Borghesani et al. 2013).
4. **Evidence per family** (:mod:`core.ml.vibration.evidence`): a fitted comb at BPFO (outer race), BPFI (inner
   race), 2·BSF (ball) with ``harmonics`` lines; sidebands at ±shaft frequency (inner race) and ±FTF (ball).
5. **Floor** (constant false-alarm style): the same comb score at ``surrogates`` reference rates away from every
   candidate. Every family's score and every reference rate's score is the **maximum over all candidate
   bands**, so looking in more bands raises the floor with the families' chances; the floor is the larger of
   ``threshold_db`` and the reference scores' 95th percentile + ``margin_db``.
6. **Decision**:

   * a family is *named* when its score reaches the floor, leads the runner-up by ``win_margin_db``, and, for an
     inner race, its shaft sidebands reach ``sideband_db`` (the spall turns through the load zone, so a BPFI comb
     without shaft modulation is not taken as an inner-race defect);
   * ``unknown`` when some family reaches the floor but none wins clearly, or when the chosen band is strongly
     impulsive (spectral kurtosis ≥ ``impulsive_sk``) without any family reaching the floor: something impacts,
     but its rate matches no bearing family at this speed;
     the same when no family reaches the floor but the surrogate combs themselves find strong lines (their 95th
     percentile ≥ ``strong_lines_db``): periodic impacts at a rate of no family, e.g. another machine element,
     or a wrong speed or bearing given; and when the best family stays below the floor but stands
     ``weak_db`` or more above the reference combs' 95th percentile: bearing-like evidence too weak to name;
   * ``none`` (evidence of health) when none of this holds: no impulsive band, no family comb above the floor
     or clearly above the reference combs in any band.

   "unknown" is an honest answer, never a guess: the reason is in :attr:`Diagnosis.reason`.

Run time: one FFT of the record for the whitening, about one FFT per kurtogram level (two kurtograms), one short
SES per candidate band; the record is cut to at most ``max_samples`` (default 2^19, 10.9 s at 48 kHz) -- about
0.1–0.5 s for a CWRU file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from core.ml.vibration.bearings import BearingGeometry, get_bearing
from core.ml.vibration.cepstrum import prewhiten
from core.ml.vibration.evidence import (
    FAMILIES,
    SLIP,
    FamilyEvidence,
    SpectrumView,
    comb_evidence,
    family_evidence,
    sideband_rates,
    surrogate_rates,
)
from core.ml.vibration.kurtogram import (
    Kurtogram,
    band_envelope,
    fast_kurtogram,
    spectral_kurtosis,
    squared_envelope_spectrum,
)

CANDIDATES = {name: key for name, (key, _, _) in FAMILIES.items()}
FAULTS = ("outer race", "inner race", "ball", "none", "unknown")
DEFAULT_THRESHOLD_DB = 6.0
DEFAULT_MARGIN_DB = 3.0
DEFAULT_WIN_MARGIN_DB = 4.0
DEFAULT_SIDEBAND_DB = 3.0
DEFAULT_IMPULSIVE_SK = 5.0
DEFAULT_STRONG_LINES_DB = 12.0
DEFAULT_WEAK_DB = 2.0
#: added to a family's comb slip: within it of an integer shaft order its raw-signal comb is the shaft harmonics'
SHAFT_ORDER_MARGIN = 0.01
MIN_SAMPLES = 4096
#: the classic resonance band of envelope analysis (fractions of fs), searched besides the kurtograms' bands
CLASSIC_BAND = (0.1, 0.4)

__all__ = ["CANDIDATES", "FAULTS", "Diagnosis", "diagnose", "surrogate_rates"]


@dataclass
class Diagnosis:
    fault: str  # "outer race" | "inner race" | "ball" | "none" | "unknown"
    scores_db: dict[str, float]  # harmonic score per family (dB) in the reported spectrum
    harmonic_ratios: dict[str, list[float]]  # line / floor per harmonic (linear)
    impact_rates: dict[str, float]  # Hz per family (kinematic)
    defect_frequencies: dict[str, float]  # bpfo/bpfi/bsf/ftf in Hz
    threshold_db: float  # the floor applied (after calibration)
    surrogate_p95_db: float
    rpm: float
    fs: float
    bearing: str
    band: tuple[float, float] = (0.0, 0.0)  # Hz, of the reported spectrum
    band_source: str = ""  # "kurtogram", "kurtogram level …", "full band", "classic band" or "given"
    band_kurtosis: float = 0.0  # spectral kurtosis of the whitened kurtogram's (or the given) band
    sideband_scores_db: dict[str, float | None] = field(default_factory=dict)
    fitted_rates: dict[str, float] = field(default_factory=dict)
    runner_up: str = ""
    lead_db: float = 0.0  # best score − runner-up score
    reason: str = ""
    freqs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    spectrum: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    kurtogram: Kurtogram | None = field(repr=False, default=None)
    prewhitened: bool = True  # the reported spectrum is of the cepstrally pre-whitened (else the raw) signal
    bands_searched: int = 0  # candidate spectra (bands × whitened / raw) the scores and the floor are maxima over
    shaft_order_families: list[str] = field(default_factory=list)  # scored on the whitened spectra only

    @property
    def named(self) -> bool:
        """True when a fault family is named (not none / unknown)."""
        return self.fault in CANDIDATES

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("freqs", "spectrum", "kurtogram"):
            out.pop(key)
        out["band"] = list(self.band)
        return out


@dataclass
class _Scored:
    """One candidate band: its SES, family evidence and the comb scores at the surrogate rates."""

    band: tuple[float, float]
    source: str
    prewhitened: bool
    freqs: NDArray[np.float64]
    spectrum: NDArray[np.float64]
    evidence: dict[str, FamilyEvidence]
    reference: NDArray[np.float64]  # comb score per surrogate rate (dB, −inf when not measurable)


def _fast_length(n: int) -> int:
    """The longest length ≤ n whose FFT is fast (small prime factors)."""
    m = sfft.next_fast_len(max(n - n // 64, 1), real=True)
    return m if m <= n else n


def _score(freqs: NDArray[np.float64], spec: NDArray[np.float64], band: tuple[float, float], source: str,
           prewhitened: bool, defect_f: dict[str, float], shaft_hz: float, harmonics: int,
           reference_rates: NDArray[np.float64]) -> _Scored:  # fmt: skip
    low = min(defect_f["bpfo"], 2 * defect_f["bsf"], defect_f["bpfi"])
    top = (harmonics + 0.5) * max(defect_f["bpfi"], 2 * defect_f["bsf"], defect_f["bpfo"]) * 1.4 + shaft_hz
    view = SpectrumView(freqs, spec, floor_hz=0.2 * low, fmax=top)
    evidence = family_evidence(view, defect_f, shaft_hz, harmonics=harmonics)
    reference = np.array([comb_evidence(view, float(f), harmonics=harmonics, slip=0.01)[2] for f in reference_rates])
    return _Scored(band, source, prewhitened, freqs, spec, evidence, reference)


def _candidate_bands(kg: Kurtogram, per_level: int) -> list[tuple[tuple[float, float], str]]:
    """The full band and the ``per_level`` most impulsive bands of every kurtogram level (best first)."""
    out: list[tuple[tuple[float, float], str]] = [((kg.best.low, kg.best.high), "kurtogram")]
    for level, row in zip(kg.levels, kg.rows, strict=True):
        width = kg.fs / 2 / len(row)
        for i in np.argsort(row)[::-1][:per_level]:
            b = (float(i * width), float((i + 1) * width))
            if all(abs(b[0] - o[0]) > 1e-9 or abs(b[1] - o[1]) > 1e-9 for o, _ in out):
                out.append((b, f"kurtogram level {level:g}"))
    if all(o != (0.0, kg.fs / 2) for o, _ in out):
        out.append(((0.0, kg.fs / 2), "full band"))
    return out


def _near_shaft_order(rate: float, shaft_hz: float, tolerance: float) -> bool:
    """True when ``rate`` lies within ±``tolerance`` (relative) of an integer multiple of ``shaft_hz``."""
    order = rate / shaft_hz
    return round(order) >= 1 and abs(order / round(order) - 1) <= tolerance


def _p95(reference: NDArray[np.float64]) -> float:
    finite = reference[np.isfinite(reference)]
    return float(np.percentile(finite, 95)) if len(finite) else float("-inf")


def _decide(scores: dict[str, float], winner: FamilyEvidence, floor: float, p95: float, lines_p95: float,
            band_sk: float,
            win_margin_db: float, sideband_db: float, impulsive_sk: float, strong_lines_db: float, weak_db: float,
            ) -> tuple[str, str, float, str]:  # fmt: skip
    """(fault, runner-up, lead in dB, reason)."""
    ranked = sorted(scores, key=lambda k: scores[k], reverse=True)
    best, second = ranked[0], ranked[1]
    top = scores[best]
    lead = top - scores[second]
    if top < floor:
        if band_sk >= impulsive_sk:
            return "unknown", second, lead, (
                f"impulsive band (spectral kurtosis {band_sk:.1f} ≥ {impulsive_sk:g}) but no family reaches the "
                f"floor {floor:.1f} dB (best {best} {top:.1f} dB): something impacts, but no family's comb stands out"
            )
        if lines_p95 >= strong_lines_db:
            return "unknown", second, lead, (
                f"strong envelope lines at rates of no bearing family (whitened spectra: surrogate 95th percentile "
                f"{lines_p95:.1f} dB ≥ "
                f"{strong_lines_db:g} dB; best family {best} {top:.1f} dB below the floor {floor:.1f} dB): "
                "another source of impacts, or a wrong speed or bearing"
            )
        if top - p95 >= weak_db:
            return "unknown", second, lead, (
                f"weak bearing evidence: {best} {top:.1f} dB stands {top - p95:.1f} dB ≥ {weak_db:g} dB above the "
                f"reference combs' 95th percentile but below the floor {floor:.1f} dB"
            )
        return "none", second, lead, (
            f"no sign of a defect: no family reaches the floor {floor:.1f} dB nor stands {weak_db:g} dB above the "
            f"reference combs (best {best} {top:.1f} dB, reference 95th percentile {p95:.1f} dB), no impulsive band"
        )
    if lead < win_margin_db:
        return "unknown", second, lead, (
            f"{best} ({top:.1f} dB) leads {second} by only {lead:.1f} dB < {win_margin_db:g} dB"
        )
    sidebands = winner.sideband_score_db
    if best == "inner race" and (sidebands is None or sidebands < sideband_db):
        shown = "none measurable" if sidebands is None else f"{sidebands:.1f} dB"
        return "unknown", second, lead, (
            f"BPFI comb ({top:.1f} dB) without shaft-speed sidebands ({shown} < {sideband_db:g} dB)"
        )
    return best, second, lead, f"{best} {top:.1f} dB ≥ floor {floor:.1f} dB, leads {second} by {lead:.1f} dB"


def diagnose(
    x: np.ndarray,
    fs: float,
    rpm: float,
    bearing: str | BearingGeometry = "6205",
    *,
    band: tuple[float, float] | None = None,
    harmonics: int = 3,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    margin_db: float = DEFAULT_MARGIN_DB,
    win_margin_db: float = DEFAULT_WIN_MARGIN_DB,
    sideband_db: float = DEFAULT_SIDEBAND_DB,
    impulsive_sk: float = DEFAULT_IMPULSIVE_SK,
    surrogates: int = 40,
    resolution_hz: float = 0.5,
    max_samples: int = 2**19,
    bands_per_level: int = 2,
    strong_lines_db: float = DEFAULT_STRONG_LINES_DB,
    weak_db: float = DEFAULT_WEAK_DB,
) -> Diagnosis:
    """Name the bearing fault family of signal ``x`` sampled at ``fs`` Hz with the shaft at ``rpm`` (see the
    module doc). Raises ValueError for a signal that is not 1-D, shorter than 4096 samples or not finite, or a
    band outside (0, fs/2)."""
    geometry = get_bearing(bearing)
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < MIN_SAMPLES:
        raise ValueError(f"diagnosis needs a 1-D signal of at least {MIN_SAMPLES} samples")
    if not np.isfinite(x).all():
        raise ValueError("the signal holds non-finite values")
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs}")
    if band is not None and not 0 <= band[0] < band[1] <= fs / 2:
        raise ValueError(f"band {band[0]}–{band[1]} Hz must lie inside [0, {fs / 2}] Hz")
    defect_f = geometry.frequencies(rpm)
    shaft_hz = rpm / 60.0
    rates = {name: defect_f[key] * mult for name, (key, mult, _) in FAMILIES.items()}
    x = x[: _fast_length(min(len(x), max_samples))]
    need = harmonics * max(rates.values()) + 2 * shaft_hz
    if need >= fs / 2:
        raise ValueError(
            f"fs = {fs:g} Hz is too low for {harmonics} harmonics of {max(rates.values()):.1f} Hz "
            f"(need > {2 * need:.0f} Hz)"
        )
    # CPW makes the wrap-around jump of the record's ends an impulse: drop 1 % (≥ 128 samples) at each end
    xw = prewhiten(x)
    edge = max(128, len(x) // 100)
    xw = xw[edge : edge + _fast_length(len(xw) - 2 * edge)]
    white = np.fft.rfft(xw)
    xr = x[edge : edge + len(xw)] - x[edge : edge + len(xw)].mean()
    raw = np.fft.rfft(xr)
    kg: Kurtogram | None = None
    classic = (CLASSIC_BAND[0] * fs, CLASSIC_BAND[1] * fs)
    if band is None:
        kg = fast_kurtogram(xw, fs, min_bandwidth=need)
        band_sk = kg.best.kurtosis
        white_bands = _candidate_bands(kg, bands_per_level)
        raw_bands = _candidate_bands(fast_kurtogram(xr, fs, min_bandwidth=need), bands_per_level)
        if classic[1] - classic[0] >= need:
            white_bands.append((classic, "classic band"))
            raw_bands.append((classic, "classic band"))
    else:
        band_sk = spectral_kurtosis(band_envelope(white, len(xw), fs, band[0], band[1]))
        white_bands = raw_bands = [(band, "given")]
    reference_rates = surrogate_rates(
        list(rates.values()), surrogates, shaft_hz=shaft_hz, avoid=sideband_rates(defect_f, shaft_hz)
    )
    scored = []
    for signal, spectrum, bands, prewhitened in ((xw, white, white_bands, True), (xr, raw, raw_bands, False)):
        for b, source in bands:
            freqs, spec = squared_envelope_spectrum(signal, fs, b, spectrum=spectrum, resolution_hz=resolution_hz)
            scored.append(_score(freqs, spec, b, source, prewhitened, defect_f, shaft_hz, harmonics, reference_rates))
    # a family whose rate lies within its slip + 1 % of an integer shaft order has, in the raw signal, the comb of
    # the shaft harmonics (with their own shaft-spaced "sidebands"): only the whitened spectra count for it
    shaft_like = [name for name, r in rates.items() if _near_shaft_order(r, shaft_hz, SLIP[name] + SHAFT_ORDER_MARGIN)]

    def counts(s: _Scored, name: str) -> bool:
        return s.prewhitened or name not in shaft_like

    # max over bands for the families and, alike, for every surrogate rate: the floor accounts for the choice
    scores = {name: max(s.evidence[name].harmonic_score_db for s in scored if counts(s, name)) for name in rates}
    p95 = _p95(np.max(np.vstack([s.reference for s in scored]), axis=0))
    # "strong lines at no family's rate" asks for impacts: the whitened spectra, where shaft and gear lines are gone
    lines_p95 = _p95(np.max(np.vstack([s.reference for s in scored if s.prewhitened]), axis=0))
    floor = max(threshold_db, p95 + margin_db)
    best_name = max(scores, key=lambda k: scores[k])
    chosen = max((s for s in scored if counts(s, best_name)), key=lambda s: s.evidence[best_name].harmonic_score_db)
    fault, runner_up, lead, reason = _decide(
        scores, chosen.evidence[best_name], floor, p95, lines_p95, band_sk, win_margin_db, sideband_db,
        impulsive_sk, strong_lines_db, weak_db,
    )
    ev = chosen.evidence
    return Diagnosis(
        fault=fault,
        scores_db=scores,
        harmonic_ratios={k: [10 ** (v / 20) if math.isfinite(v) else math.nan for v in e.harmonics_db]
                         for k, e in ev.items()},  # fmt: skip
        impact_rates=rates,
        defect_frequencies=defect_f,
        threshold_db=floor,
        surrogate_p95_db=p95,
        rpm=float(rpm),
        fs=float(fs),
        bearing=geometry.name,
        band=chosen.band,
        band_source=chosen.source,
        band_kurtosis=band_sk,
        sideband_scores_db={k: e.sideband_score_db for k, e in ev.items() if e.sideband_score_db is not None},
        fitted_rates={k: e.fitted_rate_hz for k, e in ev.items()},
        runner_up=runner_up,
        lead_db=lead,
        reason=reason,
        freqs=chosen.freqs,
        spectrum=chosen.spectrum,
        kurtogram=kg,
        prewhitened=chosen.prewhitened,
        bands_searched=len(scored),
        shaft_order_families=shaft_like,
    )
