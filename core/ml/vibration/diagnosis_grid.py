"""Evaluation sets of the bearing diagnosis: the CWRU files' labels and the simulator grid.

**CWRU labels** (:func:`cwru_label`): the file number of the CWRU Bearing Data Center names the fault. Drive-end
12 kHz records: inner race 105–108 (0.007 in), 169–172 (0.014), 209–212 (0.021), 3001–3004 (0.028); ball
118–121, 185–188, 222–225, 3005–3008; outer race centred (6:00) 130–133, 197–200, 234–237, at 3:00 144–147,
246–249, at 12:00 156–159, 258–261; each group of four is motor load 0, 1, 2, 3 HP. Normal baseline 97–100
(0–3 HP) is recorded at 48 kHz. Files of other numbers are reported as "unlabelled".

**Simulator grid** (:func:`simulator_cases`): every family (healthy, outer race, inner race, ball) under the
conditions the CWRU rig and real machines vary (see :mod:`core.ml.vibration.simulator` for the physics):

* ``development``: the grid the decision thresholds were tuned on -- fs 12 / 48 kHz × motor load 0–3 HP
  (1797 / 1772 / 1750 / 1730 rpm, load zone widening with load) × three defect sizes (impact 0.08 / 0.15 / 0.3 g)
  × two noise levels (0.05 / 0.15 g) × masking off/on (12 shaft harmonics ×3 and a 28-tooth gear mesh at
  0.3 g), outer-race spall at 6:00, 3:00 or 12:00, resonance at 0.2–0.3·fs, seed 0;
* ``held-out``: never looked at while tuning: random draws (seeds from :data:`HELDOUT_FIRST_SEED` = 30,000; the
  earlier held-out grids, seeds from 10,000 and from 20,000, were seen during development and are kept only for
  the record) of every parameter from ranges
  that include values not in the development grid -- speed 1,700–1,850 rpm with a ±0.5 % error in the speed
  given to the diagnosis, fs 12 / 20 / 25.6 / 48 kHz, resonance anywhere in 0.12–0.42·fs, noise 0.03–0.2 g,
  impact 0.05–0.4 g, load zone 50–90°, random knocks on a quarter of the healthy records, and the IMS rig's
  bearing (Rexnord ZA-2115 at 2,000 rpm, 20 kHz) on one record in five.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.ml.vibration.bearings import IMS_RPM, REXNORD_ZA_2115, SKF_6205, BearingGeometry
from core.ml.vibration.simulator import FAULT_NAMES, DefectPhysics, simulate_signal

#: first seed of the current held-out grid; the grids from 10,000 (run twice) and 20,000 (run once, its failures
#: then examined) were seen while developing and are no longer held out
HELDOUT_FIRST_SEED = 30_000
HELDOUT_FIRST_SEED_MIN = 10_000
CWRU_LOAD_RPM = {0: 1797.0, 1: 1772.0, 2: 1750.0, 3: 1730.0}
#: load zone half-angle (deg) and depth per motor load: more load, wider zone, less relative modulation
LOAD_ZONE = {0: (60.0, 0.9), 1: (70.0, 0.85), 2: (80.0, 0.8), 3: (90.0, 0.75)}
_CWRU_GROUPS: list[tuple[int, str, float, str]] = [
    (105, "inner race", 0.007, ""), (169, "inner race", 0.014, ""), (209, "inner race", 0.021, ""),
    (3001, "inner race", 0.028, ""),
    (118, "ball", 0.007, ""), (185, "ball", 0.014, ""), (222, "ball", 0.021, ""), (3005, "ball", 0.028, ""),
    (130, "outer race", 0.007, "6:00"), (197, "outer race", 0.014, "6:00"), (234, "outer race", 0.021, "6:00"),
    (144, "outer race", 0.007, "3:00"), (246, "outer race", 0.021, "3:00"),
    (156, "outer race", 0.007, "12:00"), (258, "outer race", 0.021, "12:00"),
]  # fmt: skip


@dataclass(frozen=True)
class CwruLabel:
    number: int
    family: str  # "outer race" | "inner race" | "ball" | "none"
    size_in: float
    load_hp: int
    position: str
    fs: float


def cwru_label(number: int | str) -> CwruLabel | None:
    """The label of a CWRU drive-end record by file number (e.g. ``"130"`` or ``130``), None when unknown."""
    n = int(str(number).lstrip("X").lstrip("0") or 0)
    if 97 <= n <= 100:
        return CwruLabel(n, "none", 0.0, n - 97, "", 48_000.0)
    for first, family, size, position in _CWRU_GROUPS:
        if first <= n < first + 4:
            return CwruLabel(n, family, size, n - first, position, 12_000.0)
    return None


@dataclass
class SimCase:
    split: str
    index: int
    fault: str  # simulator name: none / outer / inner / ball
    fs: float
    rpm: float  # true shaft speed
    rpm_given: float  # the speed told to the diagnosis
    geometry: BearingGeometry
    severity: float
    noise_sd: float
    masking: bool
    resonance_hz: float
    physics: DefectPhysics
    load_hp: float
    knocks_per_s: float = 0.0
    seed: int = 0
    duration_s: float = 2.0

    @property
    def truth(self) -> str:
        return FAULT_NAMES[self.fault]

    def signal(self) -> np.ndarray:
        return simulate_signal(
            self.fault,
            fs=self.fs,
            rpm=self.rpm,
            geometry=self.geometry,
            n_samples=int(self.duration_s * self.fs),
            severity=self.severity,
            noise_sd=self.noise_sd,
            shaft_scale=3.0 if self.masking else 1.0,
            shaft_harmonics=12 if self.masking else 3,
            mesh_order=28 if self.masking else None,
            mesh_amp=0.3 if self.masking else 0.0,
            resonance_hz=self.resonance_hz,
            physics=self.physics,
            knocks_per_s=self.knocks_per_s,
            knock_amp=0.3 if self.knocks_per_s else 0.0,
            rng=self.seed,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "split": self.split, "index": self.index, "truth": self.truth, "fs": self.fs, "rpm": round(self.rpm, 1),
            "rpm_given": round(self.rpm_given, 1), "bearing": self.geometry.name, "severity_g": round(self.severity, 3),
            "noise_sd_g": round(self.noise_sd, 3), "masking": self.masking, "resonance_hz": round(self.resonance_hz),
            "load_hp": self.load_hp, "outer_angle_deg": self.physics.outer_angle_deg,
            "knocks_per_s": self.knocks_per_s, "seed": self.seed,
        }  # fmt: skip


def _physics(fault: str, zone_deg: float, depth: float, outer_angle: float) -> DefectPhysics:
    if fault == "ball":
        return DefectPhysics(depth, zone_deg, 0.0, ball_inner_ratio=0.5, strike_prob=0.8, amp_jitter=0.3)
    return DefectPhysics(depth, zone_deg, outer_angle if fault == "outer" else 0.0, amp_jitter=0.1)


def development_cases() -> list[SimCase]:
    """The development grid (see the module doc): 4 families × 2 fs × 4 loads × 3 sizes × 2 noise × 2 masking."""
    cases: list[SimCase] = []
    rng = np.random.default_rng(0)
    angles = (0.0, 90.0, 180.0)
    for fault in ("none", "outer", "inner", "ball"):
        for fs in (12_000.0, 48_000.0):
            for load in range(4):
                for severity in (0.08, 0.15, 0.3):
                    for noise in (0.05, 0.15):
                        for masking in (False, True):
                            zone, depth = LOAD_ZONE[load]
                            angle = angles[len(cases) % 3]
                            cases.append(
                                SimCase(
                                    "development", len(cases), fault, fs, CWRU_LOAD_RPM[load],
                                    CWRU_LOAD_RPM[load], SKF_6205, severity, noise, masking,
                                    float(rng.uniform(0.2, 0.3) * fs), _physics(fault, zone, depth, angle),
                                    float(load), seed=len(cases),
                                )
                            )  # fmt: skip
    return cases


def heldout_cases(count: int = 400, *, first_seed: int = HELDOUT_FIRST_SEED) -> list[SimCase]:
    """``count`` held-out cases, random draws from wider ranges (see the module doc), seeds from ``first_seed``
    (the draws and every record's noise). ``first_seed=10_000`` and ``20_000`` give the earlier held-out grids,
    which were looked at while the method changed and are no longer held out."""
    if first_seed < HELDOUT_FIRST_SEED_MIN:
        raise ValueError(f"held-out seeds start at {HELDOUT_FIRST_SEED_MIN:,} (below: development seeds)")
    cases: list[SimCase] = []
    rng = np.random.default_rng(first_seed)
    faults = ("none", "outer", "inner", "ball")
    for i in range(count):
        fault = faults[i % 4]
        ims = rng.random() < 0.2
        if ims:
            fs, rpm, geometry, load = 20_000.0, IMS_RPM, REXNORD_ZA_2115, float("nan")
        else:
            fs = float(rng.choice([12_000.0, 20_000.0, 25_600.0, 48_000.0]))
            rpm, geometry, load = float(rng.uniform(1700, 1850)), SKF_6205, float(rng.uniform(0, 3))
        zone = float(rng.uniform(50, 90))
        depth = float(rng.uniform(0.6, 0.95))
        physics = _physics(fault, zone, depth, float(rng.choice([0.0, 90.0, 180.0, rng.uniform(0, 180)])))
        cases.append(
            SimCase(
                "held-out", i, fault, fs, rpm, rpm * float(1 + rng.uniform(-0.005, 0.005)), geometry,
                float(rng.uniform(0.05, 0.4)), float(rng.uniform(0.03, 0.2)), bool(rng.random() < 0.5),
                float(rng.uniform(0.12, 0.42) * fs), physics, load,
                knocks_per_s=float(rng.uniform(1, 5)) if fault == "none" and rng.random() < 0.25 else 0.0,
                seed=first_seed + i,
            )
        )  # fmt: skip
    return cases
