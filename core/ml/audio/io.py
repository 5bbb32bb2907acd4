"""Clip discovery and loading for machine-sound datasets.

Layouts (``root`` is the directory given by the user):

* ``mimii`` — MIMII (Purohit et al., DCASE 2019): ``<root>/[<machine>/]id_XX/{normal,abnormal}/*.wav``. The
  machine level is optional: when ``root`` itself is one machine's directory the machine name is ``root``'s
  name. Inside an ``id_XX`` directory, clips named with the DCASE convention (``normal_id_XX_*.wav``,
  ``anomaly_id_XX_*.wav``) directly in the id directory are accepted too: that is how ``make datasets`` lays out
  the DCASE 2020 fan test clips in ``mimii/id_XX/`` of the datasets folder (SM_DATASETS_DIR).
* ``dcase`` — DCASE 2020 Task 2 development set: ``<root>/[<machine>/]{train,test}/`` with
  ``train/normal_id_XX_*.wav`` and ``test/{normal,anomaly}_id_XX_*.wav``. The ``split`` of a clip is the
  directory it lies in (train clips are all normal by the task's definition).

Loading (:func:`load_wav`): every clip is returned as float32 mono at 16 kHz. A multichannel file (MIMII's raw
recordings have 8 microphones) is reduced to its **first channel** — the DCASE 2020 development set is exactly
MIMII's channel 0 — and another sampling rate is resampled with librosa (soxr, high quality). A file that cannot
be read raises :class:`AudioReadError` naming the file; nothing is ever substituted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_RATE = 16_000
LAYOUTS = ("mimii", "dcase")
_ID_DIR = re.compile(r"^id_(\d+)$")
_DCASE_NAME = re.compile(r"^(normal|anomaly)_id_(\d+)_.*\.wav$", re.IGNORECASE)
_MIMII_LABELS = {"normal": "normal", "abnormal": "anomaly"}
CLIP_COLUMNS = ["path", "machine", "machine_id", "label", "split", "clip"]


class AudioReadError(RuntimeError):
    """A clip could not be read or decoded; the message names the file."""


@dataclass(frozen=True)
class Clip:
    path: str
    machine: str
    machine_id: str  # "id_00"
    label: str  # "normal" | "anomaly"
    split: str  # "train" | "test" | "" (MIMII: no predefined split)

    @property
    def is_anomaly(self) -> bool:
        return self.label == "anomaly"


def _frame(clips: list[Clip]) -> pd.DataFrame:
    rows = [
        {
            "path": c.path,
            "machine": c.machine,
            "machine_id": c.machine_id,
            "label": c.label,
            "split": c.split,
            # unique key: MIMII reuses file names across normal/ and abnormal/
            "clip": f"{c.machine}/{c.machine_id}/{c.split + '/' if c.split else ''}{c.label}/{Path(c.path).name}",
        }
        for c in clips
    ]
    frame = pd.DataFrame(rows, columns=CLIP_COLUMNS)
    return frame.sort_values(["machine", "machine_id", "split", "label", "path"], ignore_index=True)


def _mimii_id_dir(id_dir: Path, machine: str) -> list[Clip]:
    machine_id = id_dir.name
    clips: list[Clip] = []
    for sub, label in _MIMII_LABELS.items():
        for wav in sorted((id_dir / sub).glob("*.wav")) if (id_dir / sub).is_dir() else []:
            clips.append(Clip(str(wav), machine, machine_id, label, ""))
    for wav in sorted(id_dir.glob("*.wav")):
        match = _DCASE_NAME.match(wav.name)
        if match is None:
            raise AudioReadError(f"{wav}: clip name does not follow <normal|anomaly>_id_XX_*.wav")
        if f"id_{match.group(2)}" != machine_id:
            raise AudioReadError(f"{wav}: id in the file name differs from its directory {machine_id}")
        clips.append(Clip(str(wav), machine, machine_id, match.group(1).lower(), ""))
    return clips


def read_mimii(root: str | PathLike[str], machine: str | None = None) -> pd.DataFrame:
    """Clips of a MIMII tree (see the module doc) as a frame with :data:`CLIP_COLUMNS`.

    ``machine`` overrides the machine name of a single-machine root (default: the root directory's name)."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"audio dataset directory not found: {base}")
    clips: list[Clip] = []
    id_dirs = sorted(p for p in base.iterdir() if p.is_dir() and _ID_DIR.match(p.name))
    if id_dirs:
        for id_dir in id_dirs:
            clips += _mimii_id_dir(id_dir, machine or base.name)
    else:
        for machine_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for id_dir in sorted(p for p in machine_dir.iterdir() if p.is_dir() and _ID_DIR.match(p.name)):
                clips += _mimii_id_dir(id_dir, machine_dir.name)
    if not clips:
        raise FileNotFoundError(f"no MIMII clips (<machine>/id_XX/{{normal,abnormal}}/*.wav) under {base}")
    return _frame(clips)


def _dcase_machine(machine_dir: Path, machine: str) -> list[Clip]:
    clips: list[Clip] = []
    for split in ("train", "test"):
        folder = machine_dir / split
        if not folder.is_dir():
            continue
        for wav in sorted(folder.glob("*.wav")):
            match = _DCASE_NAME.match(wav.name)
            if match is None:
                raise AudioReadError(f"{wav}: clip name does not follow <normal|anomaly>_id_XX_*.wav")
            label = match.group(1).lower()
            if split == "train" and label != "normal":
                raise AudioReadError(f"{wav}: DCASE training clips are normal by definition")
            clips.append(Clip(str(wav), machine, f"id_{match.group(2)}", label, split))
    return clips


def read_dcase(root: str | PathLike[str], machine: str | None = None) -> pd.DataFrame:
    """Clips of a DCASE 2020 Task 2 tree (``<root>/[<machine>/]{train,test}/*.wav``) with :data:`CLIP_COLUMNS`."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"audio dataset directory not found: {base}")
    if (base / "train").is_dir() or (base / "test").is_dir():
        clips = _dcase_machine(base, machine or base.name)
    else:
        clips = []
        for machine_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            clips += _dcase_machine(machine_dir, machine_dir.name)
    if not clips:
        raise FileNotFoundError(f"no DCASE clips ([<machine>/]{{train,test}}/*_id_XX_*.wav) under {base}")
    return _frame(clips)


def read_clips(root: str | PathLike[str], layout: str = "mimii", machine: str | None = None) -> pd.DataFrame:
    """Dispatch on ``layout`` (``mimii`` or ``dcase``)."""
    if layout == "mimii":
        return read_mimii(root, machine)
    if layout == "dcase":
        return read_dcase(root, machine)
    raise ValueError(f"unknown audio layout {layout!r}; expected one of {LAYOUTS}")


def load_wav(path: str | PathLike[str], sr: int = SAMPLE_RATE) -> np.ndarray:
    """The clip as float32 mono in [-1, 1] at ``sr`` Hz: first channel of a multichannel file, resampled when
    the file's rate differs. Raises :class:`AudioReadError` (with the file name) on any read failure and on an
    empty or non-finite signal."""
    import soundfile as sf

    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, OSError…
        raise AudioReadError(f"cannot read audio file {path}: {exc}") from exc
    signal = data[:, 0]
    if signal.size == 0:
        raise AudioReadError(f"audio file {path} holds no samples")
    if file_sr != sr:
        import librosa

        signal = librosa.resample(signal, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq").astype(
            np.float32
        )
    if not np.all(np.isfinite(signal)):
        raise AudioReadError(f"audio file {path} holds non-finite samples")
    return np.ascontiguousarray(signal, dtype=np.float32)


def describe(clips: pd.DataFrame) -> pd.DataFrame:
    """Clip counts per machine, id, split and label."""
    return clips.groupby(["machine", "machine_id", "split", "label"]).size().rename("clips").reset_index()
