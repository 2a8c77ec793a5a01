"""Cepstral mean and variance normalisation (CMVN) per utterance, per speaker or over the whole training set.

Per-speaker and global statistics are accumulated at training time and saved (`Cmvn.save`) so that decoding
applies the very same shift and scale. A speaker never seen in training falls back to its own utterance's
statistics, the closest available estimate of a speaker's mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODES = ("none", "utterance", "speaker", "global")
_EPS = 1e-5  # variance floor so constant dimensions (digital silence) do not blow up


@dataclass
class RunningStats:
    """Sums for a mean and variance over frames, accumulated in float64."""

    count: float = 0.0
    total: np.ndarray | None = None  # (D,)
    total_sq: np.ndarray | None = None  # (D,)

    def add(self, frames: np.ndarray) -> None:
        """frames: (T, D)"""
        frames = np.asarray(frames, dtype=np.float64)
        if self.total is None:
            self.total = np.zeros(frames.shape[1])
            self.total_sq = np.zeros(frames.shape[1])
        self.count += frames.shape[0]
        self.total += frames.sum(axis=0)
        self.total_sq += (frames**2).sum(axis=0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean (D,), std (D,)) as float32."""
        if self.total is None or self.count == 0:
            raise ValueError("no frames accumulated")
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - mean**2, _EPS)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def normalize_utterance(frames: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension over one utterance. frames: (T, D) -> (T, D) float32."""
    if len(frames) == 0:
        return np.asarray(frames, dtype=np.float32)
    stats = RunningStats()
    stats.add(frames)
    mean, std = stats.mean_std()
    return ((frames - mean) / std).astype(np.float32)


@dataclass
class Cmvn:
    """Fitted normalisation. mode: none | utterance | speaker | global.

    speakers maps a speaker id to (mean (D,), std (D,)); `global_mean`/`global_std` are the pooled statistics.
    """

    mode: str = "utterance"
    speakers: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    global_mean: np.ndarray | None = None
    global_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"CMVN mode {self.mode!r} unknown; choose one of {MODES}")

    @classmethod
    def fit(cls, mode: str, utterances) -> "Cmvn":
        """Accumulate statistics. utterances: iterable of (speaker, frames (T, D))."""
        cmvn = cls(mode=mode)
        if mode in ("none", "utterance"):
            return cmvn
        per_speaker: dict[str, RunningStats] = {}
        pooled = RunningStats()
        for speaker, frames in utterances:
            if len(frames) == 0:
                continue
            per_speaker.setdefault(speaker, RunningStats()).add(frames)
            pooled.add(frames)
        cmvn.global_mean, cmvn.global_std = pooled.mean_std()
        if mode == "speaker":
            cmvn.speakers = {spk: stats.mean_std() for spk, stats in per_speaker.items()}
        return cmvn

    def __call__(self, frames: np.ndarray, speaker: str | None = None) -> np.ndarray:
        """Normalise one utterance. frames: (T, D) -> (T, D) float32."""
        frames = np.asarray(frames, dtype=np.float32)
        if self.mode == "none" or len(frames) == 0:
            return frames
        if self.mode == "global":
            return ((frames - self.global_mean) / self.global_std).astype(np.float32)
        if self.mode == "speaker" and speaker in self.speakers:
            mean, std = self.speakers[speaker]
            return ((frames - mean) / std).astype(np.float32)
        return normalize_utterance(frames)

    def save(self, path: str | Path) -> None:
        """Write `cmvn.npz`: mode, speaker ids, their means/stds, the global statistics."""
        ids = sorted(self.speakers)
        dim = len(self.global_mean) if self.global_mean is not None else 0
        np.savez(
            path,
            mode=np.array(self.mode),
            speaker_ids=np.array(ids, dtype=str),
            speaker_mean=np.stack([self.speakers[s][0] for s in ids]) if ids else np.zeros((0, dim), np.float32),
            speaker_std=np.stack([self.speakers[s][1] for s in ids]) if ids else np.zeros((0, dim), np.float32),
            global_mean=self.global_mean if self.global_mean is not None else np.zeros(0, np.float32),
            global_std=self.global_std if self.global_std is not None else np.zeros(0, np.float32),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Cmvn":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: CMVN statistics not found; rerun feature extraction")
        data = np.load(path)
        ids = [str(s) for s in data["speaker_ids"]]
        speakers = {s: (data["speaker_mean"][i], data["speaker_std"][i]) for i, s in enumerate(ids)}
        has_global = data["global_mean"].size > 0
        return cls(
            mode=str(data["mode"]),
            speakers=speakers,
            global_mean=data["global_mean"] if has_global else None,
            global_std=data["global_std"] if has_global else None,
        )
