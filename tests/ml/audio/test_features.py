"""Log-mel context vectors and MFCC statistics: shapes, a pure tone in the right band, loud failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.ml.audio.features import (
    FeatureExtractionError,
    MelConfig,
    clip_context_vectors,
    clip_mfcc_statistics,
    context_vectors,
    extract_context_vectors,
    extract_mfcc_table,
    log_mel,
    mfcc_feature_names,
    mfcc_statistics,
)
from core.ml.audio.io import read_mimii
from tests.ml.audio.conftest import tone, write_wav


def test_context_vectors_shape_and_frame_order() -> None:
    logmel = np.arange(4 * 7, dtype=np.float32).reshape(4, 7)  # 4 bands, 7 frames
    vectors = context_vectors(logmel, context=3)
    assert vectors.shape == (5, 12)
    np.testing.assert_array_equal(vectors[0], np.concatenate([logmel[:, 0], logmel[:, 1], logmel[:, 2]]))
    np.testing.assert_array_equal(vectors[4, 8:], logmel[:, 6])
    with pytest.raises(ValueError, match="fewer than the context"):
        context_vectors(logmel[:, :2], context=3)


def test_clip_context_vectors_of_a_two_second_file(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(1000, seconds=2.0))
    vectors = clip_context_vectors(path)
    frames = 1 + 32_000 // 512  # centred STFT
    assert vectors.shape == (frames - 5 + 1, 128 * 5)
    assert vectors.dtype == np.float32


def test_pure_tone_peaks_in_the_mel_band_of_its_frequency() -> None:
    import librosa

    config = MelConfig()
    centres = librosa.mel_frequencies(n_mels=config.n_mels + 2, fmax=config.sr / 2)[1:-1]
    for freq in (500.0, 2000.0, 5000.0):
        spectrum = log_mel(tone(freq), config).mean(axis=1)
        peak_band = int(np.argmax(spectrum))
        assert abs(centres[peak_band] - freq) / freq < 0.08, (freq, centres[peak_band])


def test_mfcc_statistics_shape_and_tones_differ() -> None:
    whole = mfcc_statistics(tone(500, seconds=3.0))
    assert whole.shape == (1, 80)
    segments = mfcc_statistics(tone(500, seconds=3.0), segment_s=1.0)
    assert segments.shape == (3, 80)
    assert len(mfcc_feature_names()) == 80
    low, high = mfcc_statistics(tone(300))[0], mfcc_statistics(tone(4000))[0]
    assert np.linalg.norm(low[:20] - high[:20]) > 10  # the MFCC means separate spectrally different tones
    gated = tone(500, seconds=3.0) * (np.arange(48_000) // 4_000 % 2)  # on/off every 0.25 s
    assert mfcc_statistics(gated)[0, 20] > 2 * whole[0, 20]  # MFCC-0 std: a switching tone varies more


def test_corrupt_file_fails_loudly_with_its_name(tmp_path: Path) -> None:
    good = write_wav(tmp_path / "id_00" / "normal_id_00_00000000.wav", tone(440))
    bad = tmp_path / "id_00" / "normal_id_00_00000001.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot a fmt chunk at all")
    clips = read_mimii(tmp_path)
    with pytest.raises(FeatureExtractionError, match="normal_id_00_00000001.wav"):
        extract_context_vectors([str(good), str(bad)], progress=False)
    with pytest.raises(FeatureExtractionError, match="normal_id_00_00000001.wav"):
        extract_mfcc_table(clips, progress=False)
    with pytest.raises(FeatureExtractionError, match="normal_id_00_00000001.wav"):
        clip_mfcc_statistics(bad)


def test_too_short_clip_fails_loudly(tmp_path: Path) -> None:
    short = write_wav(tmp_path / "short.wav", tone(440, seconds=0.05))  # 800 samples → 2 frames < 5
    with pytest.raises(FeatureExtractionError, match="short.wav"):
        clip_context_vectors(short)


def test_mfcc_table_rows_per_segment(tmp_path: Path) -> None:
    for i in range(2):
        write_wav(tmp_path / "id_00" / f"normal_id_00_{i:08d}.wav", tone(440, seconds=2.0))
    write_wav(tmp_path / "id_00" / "anomaly_id_00_00000000.wav", tone(880, seconds=2.0))
    table = extract_mfcc_table(read_mimii(tmp_path), segment_s=1.0, progress=False)
    assert len(table) == 6
    assert table.groupby("clip").size().tolist() == [2, 2, 2]
    assert set(mfcc_feature_names()) <= set(table.columns)
