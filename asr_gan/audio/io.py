"""Read wav, flac and NIST SPHERE (TIMIT) audio at any rate and channel count.

libsndfile (through `soundfile`) reads all three, SPHERE included, so no sph2pipe is
needed. Everything returned is mono float32 at `SAMPLE_RATE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """Audio that cannot be used; the message starts with the file's path."""


@dataclass
class AudioInfo:
    num_samples: int
    sample_rate: int
    channels: int


def audio_info(path: str | Path) -> AudioInfo:
    """Header facts of an audio file; raises AudioError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    try:
        info = soundfile.info(str(path))
    except Exception as err:  # libsndfile raises its own error types
        raise AudioError(f"{path}: unreadable audio ({err})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    return AudioInfo(num_samples=int(info.frames), sample_rate=int(info.samplerate), channels=int(info.channels))


def load_audio(
    path: str | Path,
    target_rate: int = SAMPLE_RATE,
    start: float = 0.0,
    end: float | None = None,
) -> np.ndarray:
    """Load `path` as mono float32 in [-1, 1] at `target_rate`.

    Args:
        path: wav, flac or SPHERE file.
        target_rate: output sample rate; other rates are resampled.
        start, end: span in seconds (Kaldi `segments`); `end=None` reads to the end.

    Returns:
        np.ndarray: (samples,)

    Raises:
        AudioError: missing, corrupt, truncated or empty file (the message names it).
    """
    path = Path(path)
    info = audio_info(path)
    first = int(round(start * info.sample_rate))
    last = info.num_samples if end is None else min(info.num_samples, int(round(end * info.sample_rate)))
    if last <= first:
        raise AudioError(f"{path}: empty span {start}-{end} s")
    try:
        data, rate = soundfile.read(str(path), start=first, stop=last, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{path}: unreadable audio ({err})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if data.shape[0] < last - first:
        raise AudioError(f"{path}: truncated audio ({data.shape[0]} of {last - first} samples)")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise AudioError(f"{path}: audio holds NaN or inf samples")
    if rate != target_rate:
        wave = resample(wave, rate, target_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def resample(wave: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's sinc interpolation)."""
    import torch
    import torchaudio.functional

    out = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(wave)), rate, target_rate)
    return out.numpy()
