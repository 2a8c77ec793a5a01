"""Spectral frontends: 16 kHz waveform -> per-frame features at a 10 ms hop (MFCC, log-mel, Kaldi fbank).

Self-supervised frontends (wav2vec 2.0 / HuBERT / WavLM) live in `asr_gan.features.ssl`, the shipped
cross-lingual phone encoder in `asr_gan.features.encoder`; `build_frontend` returns any kind behind the same call:
`frontend(wave (samples,)) -> (T, D) float32`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import torch

SAMPLE_RATE = 16000


@dataclass
class FrontendConfig:
    """Which features to compute. Defaults: Kaldi-style 25 ms windows every 10 ms."""

    kind: str = "mfcc"  # mfcc | fbank | kaldi_fbank | ssl | encoder
    num_ceps: int = 13  # MFCC coefficients before deltas (13 + deltas + delta-deltas = 39)
    num_mels: int = 80  # mel bands for fbank/kaldi_fbank; MFCC uses `mfcc_mels`
    mfcc_mels: int = 40  # Kaldi's default for MFCC is 23 bands at 8 kHz; 40 is the usual choice at 16 kHz
    deltas: bool = True  # append first and second differences (MFCC only)
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    ssl_checkpoint: str | None = None  # kind=ssl: fairseq .pt file or Hugging Face folder
    # kind=ssl: 0-based transformer block (wav2vec-U uses block 15 of 24 = index 14); kind=encoder: its layer
    layer: int = 14
    encoder_checkpoint: str | None = None  # kind=encoder: a phone encoder checkpoint; None = the shipped one
    device: str | None = None  # None: cuda when available, else cpu

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FrontendConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class Frontend(Protocol):
    dim: int
    frame_rate: float  # frames per second

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """wave: (samples,) float32 at 16 kHz -> (T, dim) float32."""
        ...


def num_frames(num_samples: int, frame_length: int, hop: int) -> int:
    """Frames of a Kaldi-style framing that drops the incomplete last window (snip_edges=True)."""
    return 0 if num_samples < frame_length else 1 + (num_samples - frame_length) // hop


N_FFT = 512


def _kaldi_framed(wave: np.ndarray, win: int) -> torch.Tensor:
    """Pad so torch.stft (n_fft=N_FFT, window of `win` centred in each 512-sample frame, center=False) puts
    window t at samples [t * hop, t * hop + win) like Kaldi, giving `num_frames` frames."""
    pad = (N_FFT - win) // 2
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return torch.nn.functional.pad(x, (pad, N_FFT - win - pad))


class MfccFrontend:
    """MFCC through torchaudio, with optional deltas and delta-deltas (torchaudio.functional.compute_deltas)."""

    def __init__(self, config: FrontendConfig):
        import torchaudio

        self.config = config
        self.win = int(round(SAMPLE_RATE * config.frame_length_ms / 1000))
        self.hop = int(round(SAMPLE_RATE * config.frame_shift_ms / 1000))
        # center=False frames like Kaldi (no reflection padding), so frame t starts at sample t * hop.
        self.transform = torchaudio.transforms.MFCC(
            sample_rate=SAMPLE_RATE,
            n_mfcc=config.num_ceps,
            log_mels=False,
            melkwargs={
                "n_fft": N_FFT,
                "win_length": self.win,
                "hop_length": self.hop,
                "n_mels": config.mfcc_mels,
                "center": False,
                "window_fn": torch.hamming_window,
            },
        )
        self.dim = config.num_ceps * (3 if config.deltas else 1)
        self.frame_rate = SAMPLE_RATE / self.hop

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        import torchaudio

        if len(wave) < self.win:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.no_grad():
            ceps = self.transform(_kaldi_framed(wave, self.win))  # (C, T)
            if self.config.deltas:
                d1 = torchaudio.functional.compute_deltas(ceps)
                d2 = torchaudio.functional.compute_deltas(d1)
                ceps = torch.cat([ceps, d1, d2], dim=0)
        return ceps.T.contiguous().numpy().astype(np.float32)


class LogMelFrontend:
    """Log mel filterbank energies (torchaudio MelSpectrogram, natural log with a 1e-6 floor)."""

    def __init__(self, config: FrontendConfig):
        import torchaudio

        self.win = int(round(SAMPLE_RATE * config.frame_length_ms / 1000))
        self.hop = int(round(SAMPLE_RATE * config.frame_shift_ms / 1000))
        self.transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=self.win,
            hop_length=self.hop,
            n_mels=config.num_mels,
            center=False,
            window_fn=torch.hamming_window,
        )
        self.dim = config.num_mels
        self.frame_rate = SAMPLE_RATE / self.hop

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        if len(wave) < self.win:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.no_grad():
            mel = self.transform(_kaldi_framed(wave, self.win))  # (M, T)
            return torch.log(mel + 1e-6).T.contiguous().numpy().astype(np.float32)


class KaldiFbankFrontend:
    """Kaldi-compatible log mel filterbanks (torchaudio.compliance.kaldi.fbank, no dither so runs repeat)."""

    def __init__(self, config: FrontendConfig):
        self.config = config
        self.win = int(round(SAMPLE_RATE * config.frame_length_ms / 1000))
        self.hop = int(round(SAMPLE_RATE * config.frame_shift_ms / 1000))
        self.dim = config.num_mels
        self.frame_rate = SAMPLE_RATE / self.hop

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        import torchaudio.compliance.kaldi as kaldi

        if len(wave) < self.win:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Kaldi works on 16-bit integer scale; scaling keeps its energy floor meaningful.
        samples = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).unsqueeze(0) * 32768.0
        with torch.no_grad():
            feats = kaldi.fbank(
                samples,
                sample_frequency=SAMPLE_RATE,
                num_mel_bins=self.config.num_mels,
                frame_length=self.config.frame_length_ms,
                frame_shift=self.config.frame_shift_ms,
                dither=0.0,
            )
        return feats.numpy().astype(np.float32)


def build_frontend(config: FrontendConfig) -> Frontend:
    """The frontend named by `config.kind`; raises ValueError listing the choices."""
    if config.kind == "mfcc":
        return MfccFrontend(config)
    if config.kind == "fbank":
        return LogMelFrontend(config)
    if config.kind == "kaldi_fbank":
        return KaldiFbankFrontend(config)
    if config.kind == "ssl":
        from asr_gan.features.ssl import SslFrontend

        if not config.ssl_checkpoint:
            raise ValueError("frontend kind 'ssl' needs --ssl-checkpoint (a fairseq .pt file or a Hugging Face folder)")
        return SslFrontend(config.ssl_checkpoint, layer=config.layer, device=config.device)
    if config.kind == "encoder":
        from asr_gan.features.encoder.frontend import EncoderFrontend

        return EncoderFrontend(config.encoder_checkpoint, layer=config.layer, device=config.device)
    raise ValueError(f"unknown frontend {config.kind!r}; choose mfcc, fbank, kaldi_fbank, ssl or encoder")
