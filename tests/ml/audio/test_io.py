"""Readers of the MIMII and DCASE layouts and the 16 kHz mono loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.ml.audio.io import AudioReadError, describe, load_wav, read_clips, read_dcase, read_mimii
from tests.ml.audio.conftest import tone, write_wav


def test_mimii_layout_with_machine_level(tmp_path: Path) -> None:
    for machine in ("fan", "valve"):
        for i in range(3):
            write_wav(tmp_path / machine / "id_00" / "normal" / f"{i:08d}.wav", tone(440))
        write_wav(tmp_path / machine / "id_00" / "abnormal" / "00000000.wav", tone(880))
    write_wav(tmp_path / "fan" / "id_02" / "normal" / "00000000.wav", tone(440))
    clips = read_mimii(tmp_path)
    assert len(clips) == 9
    counts = describe(clips).set_index(["machine", "machine_id", "label"])["clips"]
    assert counts[("fan", "id_00", "normal")] == 3
    assert counts[("fan", "id_00", "anomaly")] == 1
    assert counts[("fan", "id_02", "normal")] == 1
    assert counts[("valve", "id_00", "anomaly")] == 1
    assert set(clips["split"]) == {""}
    assert clips["clip"].is_unique


def test_mimii_single_machine_root_and_dcase_named_files_in_the_id_directory(tmp_path: Path) -> None:
    root = tmp_path / "pump"
    write_wav(root / "id_04" / "normal_id_04_00000000.wav", tone(300))
    write_wav(root / "id_04" / "normal_id_04_00000001.wav", tone(300))
    write_wav(root / "id_04" / "anomaly_id_04_00000000.wav", tone(600))
    clips = read_clips(root, "mimii")
    assert list(clips["machine"].unique()) == ["pump"]
    assert sorted(clips["label"]) == ["anomaly", "normal", "normal"]
    assert read_mimii(root, machine="slider")["machine"].unique().tolist() == ["slider"]


def test_mimii_rejects_a_misnamed_clip_and_an_empty_tree(tmp_path: Path) -> None:
    write_wav(tmp_path / "id_00" / "recording.wav", tone(300))
    with pytest.raises(AudioReadError, match="recording.wav"):
        read_mimii(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        read_mimii(tmp_path / "empty")


def test_dcase_layout(tmp_path: Path) -> None:
    machine = tmp_path / "slider"
    for i in range(4):
        write_wav(machine / "train" / f"normal_id_00_{i:08d}.wav", tone(500))
    write_wav(machine / "train" / "normal_id_02_00000000.wav", tone(500))
    write_wav(machine / "test" / "normal_id_00_00000000.wav", tone(500))
    write_wav(machine / "test" / "anomaly_id_00_00000000.wav", tone(700))
    write_wav(machine / "test" / "anomaly_id_02_00000001.wav", tone(700))
    for root in (tmp_path, machine):  # machine level optional
        clips = read_dcase(root)
        assert len(clips) == 8
        assert set(clips["machine"]) == {"slider"}
        train = clips[clips["split"] == "train"]
        assert set(train["label"]) == {"normal"} and len(train) == 5
        test = clips[clips["split"] == "test"]
        assert sorted(zip(test["machine_id"], test["label"], strict=True)) == [
            ("id_00", "anomaly"),
            ("id_00", "normal"),
            ("id_02", "anomaly"),
        ]


def test_dcase_rejects_an_anomalous_training_clip(tmp_path: Path) -> None:
    write_wav(tmp_path / "train" / "anomaly_id_00_00000000.wav", tone(500))
    with pytest.raises(AudioReadError, match="normal by definition"):
        read_dcase(tmp_path)
    with pytest.raises(ValueError, match="layout"):
        read_clips(tmp_path, "wav-soup")


def test_load_wav_takes_the_first_channel_and_resamples_to_16k(tmp_path: Path) -> None:
    sr = 44_100
    t = np.arange(sr) / sr
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 1000 * t), 0.3 * np.sin(2 * np.pi * 3000 * t)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, sr, subtype="PCM_16")
    signal = load_wav(path)
    assert signal.dtype == np.float32
    assert abs(signal.size - 16_000) <= 1
    spectrum = np.abs(np.fft.rfft(signal))
    freqs = np.fft.rfftfreq(signal.size, 1 / 16_000)
    assert abs(freqs[np.argmax(spectrum)] - 1000) < 3  # channel 0's tone, not channel 1's


def test_load_wav_fails_loudly_on_a_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "normal_id_00_00000000.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    with pytest.raises(AudioReadError, match="normal_id_00_00000000.wav"):
        load_wav(bad)
