"""One dataset end to end (``run_dataset``): the DCASE layout with its train/test split, and a corrupt clip that
stops the run instead of being replaced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.ml.audio.features import FeatureExtractionError
from core.ml.audio.gauntlet import limit_clips, load_dataset, run_dataset
from core.ml.audio.generator import generate_clip, machine_spec


def _dcase_tree(root: Path) -> Path:
    machine = root / "fan"
    rng = np.random.default_rng(0)
    for machine_id in (0, 2):
        spec = machine_spec(machine_id)
        for i in range(6):
            clip = generate_clip(spec, None, duration_s=1.5, seed=int(rng.integers(2**31)))
            (machine / "train").mkdir(parents=True, exist_ok=True)
            sf.write(
                machine / "train" / f"normal_id_{machine_id:02d}_{i:08d}.wav", clip, 16_000, subtype="PCM_16"
            )
        for i, fault in enumerate((None, None, "impulses", "rubbing")):
            clip = generate_clip(spec, fault, duration_s=1.5, seed=int(rng.integers(2**31)))
            name = f"{'normal' if fault is None else 'anomaly'}_id_{machine_id:02d}_{i:08d}.wav"
            (machine / "test").mkdir(parents=True, exist_ok=True)
            sf.write(machine / "test" / name, clip, 16_000, subtype="PCM_16")
    return root


@pytest.mark.heavy_ml
def test_dcase_layout_end_to_end(tmp_path: Path) -> None:
    clips = load_dataset(_dcase_tree(tmp_path), "dcase")
    result = run_dataset("dcase", clips, ["pca"], random_forest=False, progress=False)
    scores = result.evaluations["pca"].clip_scores
    assert set(scores["path"]) == set(clips.loc[clips["split"] == "test", "path"])  # train clips never scored
    table = result.table()
    assert list(table["machine_id"]) == ["id_00", "id_02"]
    assert (table["n_normal"] == 2).all() and (table["n_anomaly"] == 2).all()
    assert result.finals["fan"].n_training_clips == 12
    assert np.isfinite(table["auc"]).all()


def test_a_corrupt_clip_stops_the_run_with_its_name(tmp_path: Path, generated_tree) -> None:
    _, clips = generated_tree
    clips = limit_clips(clips, 3).copy()
    bad = tmp_path / "00000001.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + bytes(64))
    clips.loc[1, "path"] = str(bad)
    with pytest.raises(FeatureExtractionError, match="00000001.wav"):
        run_dataset("broken", clips, ["pca"], random_forest=False, progress=False)
    assert len(limit_clips(clips, 1)) == 4  # 2 ids × (1 normal + 1 anomalous)
