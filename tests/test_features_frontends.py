"""Spectral frontends and CMVN: frame counts, dimensions, values that follow from the input signal."""

import numpy as np
import pytest
import torch

from asr_gan.features.frontends import FrontendConfig, build_frontend, num_frames
from asr_gan.features.normalization import Cmvn, normalize_utterance

torch.set_num_threads(1)


def _sine(freq, seconds=0.5, amplitude=0.5):
    t = np.arange(int(16000 * seconds)) / 16000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("kind,dim", [("mfcc", 39), ("fbank", 80), ("kaldi_fbank", 80)])
def test_frontends_give_kaldi_frame_count_at_10ms_hop(kind, dim):
    frontend = build_frontend(FrontendConfig(kind=kind))
    wave = _sine(440, seconds=1.0)
    feats = frontend(wave)
    assert feats.shape == (num_frames(16000, 400, 160), dim) == (98, dim)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    assert frontend.frame_rate == 100.0


def test_mfcc_without_deltas_has_13_dims_and_deltas_vanish_on_a_steady_tone():
    plain = build_frontend(FrontendConfig(kind="mfcc", deltas=False))(_sine(1000))
    assert plain.shape[1] == 13
    full = build_frontend(FrontendConfig(kind="mfcc"))(_sine(1000))
    np.testing.assert_allclose(full[:, :13], plain, rtol=1e-5, atol=1e-4)
    # A stationary tone: first and second differences are ~0 away from the edges (delta window 5 frames).
    steady = full[4:-4]
    assert np.abs(steady[:, 13:]).max() < 1e-2 * np.abs(steady[:, :13]).max()


@pytest.mark.parametrize("kind", ["fbank", "kaldi_fbank"])
def test_fbank_peak_band_follows_tone_frequency(kind):
    frontend = build_frontend(FrontendConfig(kind=kind))
    low = frontend(_sine(300)).mean(axis=0).argmax()
    high = frontend(_sine(3000)).mean(axis=0).argmax()
    assert high > low + 20  # 300 Hz sits in the first ~10 of 80 mel bands, 3 kHz past band 40


def test_short_audio_gives_zero_frames():
    assert build_frontend(FrontendConfig(kind="mfcc"))(np.zeros(399, np.float32)).shape == (0, 39)


def test_utterance_cmvn_gives_zero_mean_unit_variance():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 5)).astype(np.float32)
    y = normalize_utterance(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-4)


def test_speaker_cmvn_uses_pooled_speaker_statistics_and_survives_save(tmp_path):
    rng = np.random.default_rng(1)
    a1, a2 = rng.normal(5, 1, (50, 3)), rng.normal(7, 1, (30, 3))
    b = rng.normal(-2, 3, (40, 3))
    cmvn = Cmvn.fit("speaker", [("A", a1), ("A", a2), ("B", b)])
    pooled = np.concatenate([a1, a2])
    expected = (a1 - pooled.mean(0)) / pooled.std(0)
    np.testing.assert_allclose(cmvn(a1, "A"), expected, rtol=1e-4, atol=1e-4)
    cmvn.save(tmp_path / "cmvn.npz")
    loaded = Cmvn.load(tmp_path / "cmvn.npz")
    np.testing.assert_allclose(loaded(a1, "A"), expected, rtol=1e-4, atol=1e-4)
    # An unseen speaker falls back to its own utterance's statistics.
    np.testing.assert_allclose(loaded(b, "C"), normalize_utterance(b), atol=1e-5)
    everything = np.concatenate([a1, a2, b])
    glob = Cmvn.fit("global", [("A", a1), ("A", a2), ("B", b)])
    np.testing.assert_allclose(glob(b), (b - everything.mean(0)) / everything.std(0), rtol=1e-4, atol=1e-4)


def test_unknown_frontend_names_choices():
    with pytest.raises(ValueError, match="choose mfcc"):
        build_frontend(FrontendConfig(kind="plp"))
