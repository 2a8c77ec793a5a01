"""Unsupervised energy VAD: remove silence from waveforms before feature extraction.

wav2vec-U removes silence with rVAD before computing features, for corpora that have no silence labels;
this is a simpler energy detector with the same role, applied identically at training and test time.

Per utterance: frame log-energies (25 ms windows, 10 ms hop); a threshold placed between the noise floor
(a low percentile) and the speech level (a high percentile), so it adapts to each recording's gain and noise;
short bursts removed by a morphological opening and pauses bridged by a hangover (dilation). All vector ops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000


@dataclass
class VadConfig:
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    noise_percentile: float = 10.0  # energy of the quietest frames = noise floor
    speech_percentile: float = 90.0  # energy of the loudest frames = speech level
    threshold_ratio: float = 0.35  # threshold = floor + ratio * (speech - floor), in dB
    min_dynamic_range_db: float = 10.0  # below this the whole file is taken as speech (nothing to separate)
    min_speech_ms: float = 50.0  # shorter bursts are clicks, not speech
    hangover_ms: float = 150.0  # keep this much context around speech, and bridge pauses under twice it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VadConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def frame_log_energy(wave: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Log energy in dB of each frame. wave: (samples,) -> (T,), T = 1 + (samples - frame_length) // hop."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    frames = x.unfold(0, frame_length, hop)  # (T, frame_length), a view
    frames = frames - frames.mean(dim=1, keepdim=True)  # DC offset is not speech
    energy = frames.pow(2).mean(dim=1)
    return (10.0 * torch.log10(energy + 1e-10)).numpy()


def _dilate(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Binary dilation of a (T,) bool mask by a centred window of `width` frames (width odd)."""
    if width <= 1:
        return mask
    x = mask.float()[None, None]
    return F.max_pool1d(x, width, stride=1, padding=width // 2)[0, 0, : mask.shape[0]] > 0


def _erode(mask: torch.Tensor, width: int) -> torch.Tensor:
    return ~_dilate(~mask, width)


def speech_mask(wave: np.ndarray, config: VadConfig = VadConfig()) -> np.ndarray:
    """Per-frame speech decision. wave: (samples,) -> (T,) bool at `config.frame_shift_ms` hop."""
    win = int(round(SAMPLE_RATE * config.frame_length_ms / 1000))
    hop = int(round(SAMPLE_RATE * config.frame_shift_ms / 1000))
    if len(wave) < win:
        return np.ones(1 if len(wave) else 0, dtype=bool)
    energy = frame_log_energy(wave, win, hop)
    floor, level = np.percentile(energy, [config.noise_percentile, config.speech_percentile])
    if level - floor < config.min_dynamic_range_db:
        return np.ones(len(energy), dtype=bool)
    mask = torch.from_numpy(energy > floor + config.threshold_ratio * (level - floor))
    min_speech = max(1, int(round(config.min_speech_ms / config.frame_shift_ms))) | 1
    hangover = max(1, int(round(config.hangover_ms / config.frame_shift_ms))) * 2 + 1
    mask = _dilate(_erode(mask, min_speech), min_speech)  # opening: drop clicks
    mask = _dilate(mask, hangover)
    return mask.numpy()


def frame_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and exclusive end frame of every run of True in a (T,) bool mask, in order."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def speech_spans(wave: np.ndarray, config: VadConfig = VadConfig()) -> list[tuple[int, int]]:
    """Kept sample spans [(start, end), ...] in increasing order; end is exclusive."""
    mask = speech_mask(wave, config)
    if not mask.any():  # no audio, or only bursts shorter than min_speech_ms (clicks): nothing is speech
        return []
    win = int(round(SAMPLE_RATE * config.frame_length_ms / 1000))
    hop = int(round(SAMPLE_RATE * config.frame_shift_ms / 1000))
    starts, ends = frame_runs(mask)  # ends: exclusive frame index
    # A kept frame t covers samples [t*hop, t*hop + win); a span ends where its last frame ends.
    sample_starts = starts * hop
    sample_ends = np.minimum((ends - 1) * hop + win, len(wave))
    if ends[-1] == len(mask):  # the trailing partial window belongs to the last frame's decision
        sample_ends[-1] = len(wave)
    return [(int(s), int(e)) for s, e in zip(sample_starts, sample_ends)]


def remove_silence(wave: np.ndarray, config: VadConfig = VadConfig()) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The speech spans of `wave` joined end to end, and the spans. wave: (samples,) -> (kept,)."""
    spans = speech_spans(wave, config)
    if not spans:
        return wave[:0], spans
    return np.concatenate([wave[s:e] for s, e in spans]), spans
