"""Energy VAD: trims silence+noise padding of synthesised speech, keeps speech, adapts to the gain."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from asr_gan.audio import load_audio
from asr_gan.features.vad import VadConfig, remove_silence, speech_spans

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    path = tmp_path_factory.mktemp("vad") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "seven oranges and a big blue cat"], check=True)
    wave = load_audio(path)
    # espeak pads its output with a little digital silence; cut to the first/last audible sample.
    loud = np.flatnonzero(np.abs(wave) > 0.01)
    return wave[loud[0] : loud[-1] + 1]


@pytest.mark.parametrize("gain", [1.0, 0.05])
def test_vad_trims_leading_and_trailing_silence_with_noise(speech, gain):
    rng = np.random.default_rng(0)
    pad_before, pad_after = 16000, 12000  # 1 s and 0.75 s
    noise_level = 0.003 * gain
    wave = np.concatenate([np.zeros(pad_before), speech, np.zeros(pad_after)]).astype(np.float32) * gain
    wave += rng.normal(0, noise_level, len(wave)).astype(np.float32)
    spans = speech_spans(wave)
    start, end = spans[0][0], spans[-1][1]
    hangover = int(16000 * VadConfig().hangover_ms / 1000)
    # Speech kept whole: the first span starts before the speech onset, the last ends after its offset ...
    assert start <= pad_before and end >= pad_before + len(speech)
    # ... and the padding is cut down to about the hangover on each side.
    assert start >= pad_before - hangover - 800
    assert end <= pad_before + len(speech) + hangover + 800
    trimmed, _ = remove_silence(wave)
    assert len(trimmed) == sum(e - s for s, e in spans)
    assert len(trimmed) < len(wave) - 0.7 * (pad_before + pad_after)


def test_vad_keeps_everything_when_there_is_no_silence():
    rng = np.random.default_rng(1)
    wave = rng.normal(0, 0.1, 16000).astype(np.float32)
    assert speech_spans(wave) == [(0, 16000)]


def test_vad_removes_a_long_internal_pause(speech):
    gap = np.zeros(32000, np.float32)
    wave = (np.concatenate([speech, gap, speech])
            + np.random.default_rng(2).normal(0, 0.002, 2 * len(speech) + 32000).astype(np.float32))
    spans = speech_spans(wave)
    assert len(spans) >= 2
    trimmed, _ = remove_silence(wave)
    assert len(trimmed) < len(wave) - 32000 + 2 * 16000 * VadConfig().hangover_ms / 1000 + 1600


def test_vad_finds_no_speech_in_clicks_and_gives_an_empty_wave():
    """Bursts shorter than min_speech_ms are clicks: with nothing else loud there is no span, and no error."""
    rng = np.random.default_rng(3)
    wave = rng.normal(0, 1e-3, 16000).astype(np.float32)
    for start in range(0, 16000, 1000):  # a 10 ms burst every 62.5 ms
        wave[start : start + 160] += rng.normal(0, 0.3, 160).astype(np.float32)
    assert speech_spans(wave) == []
    trimmed, spans = remove_silence(wave)
    assert len(trimmed) == 0 and spans == []
