"""Device-resident training data: every sequence of a split in one flat tensor, batches gathered on the device.

Unpadded storage plus offsets keeps memory at the data's real size; a batch is one index computation and one
gather on the device, so a GPU step never waits for a host-side collate (the reference implementation's data
loader is most of its step time). Which sequences go into a batch is drawn on the host with a numpy
generator whose state is saved in checkpoints, so a resumed run draws the same batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from asr_gan.text.phones import PhoneInventory


class SequenceBank:
    """Variable-length sequences in one flat tensor.

    Args:
        sequences: N arrays, (T_i, D) float features or (T_i,) integer phone ids.
        device: where the flat tensor lives.
        dtype: storage dtype of float features (float16 halves GPU memory; batches come out float32).
    """

    def __init__(self, sequences: Sequence[np.ndarray], device: torch.device,
                 dtype: torch.dtype | None = None) -> None:
        if not sequences:
            raise ValueError("no sequences to train on")
        self.lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.zeros(len(sequences), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=offsets[1:])
        flat = np.concatenate([np.asarray(s) for s in sequences], axis=0)
        values = torch.from_numpy(flat)
        if values.is_floating_point():
            values = values.to(dtype or torch.float32)
        self.values = values.to(device)
        self.offsets = torch.from_numpy(offsets).to(device)
        self.device_lengths = torch.from_numpy(self.lengths).to(device)
        self.device = device

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def longest(self) -> int:
        return int(self.lengths.max())

    def plan(self, index: np.ndarray, max_length: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
        """Host-side part of a batch: (3, B) int64 rows of sequence positions, crop starts and lengths.

        Args:
            index: (B,) sequence positions.
            max_length: crop longer sequences to this many positions (a random window when `rng` is
                given, else the start); 0 = no crop.
        """
        lengths = self.lengths[index]
        starts = np.zeros_like(lengths)
        if max_length and lengths.max() > max_length:
            excess = np.maximum(lengths - max_length, 0)
            if rng is not None:
                starts = (rng.random(len(index)) * (excess + 1)).astype(np.int64)
            lengths = np.minimum(lengths, max_length)
        return np.stack([np.asarray(index, dtype=np.int64), starts, lengths])

    def take(self, plan: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Device-side part: the padded batch of a (3, B) plan on the device, `width` positions wide (at least
        its longest length; wider is what CUDA graphs need, one shape for every batch).

        Returns:
            values (B, width, D) float32 or (B, width) int64, padded with zeros; padding_mask (B, width),
            True = pad.
        """
        index, starts, lengths = plan[0], plan[1], plan[2]
        steps = torch.arange(width, device=self.device)
        padding_mask = steps[None, :] >= lengths[:, None]
        positions = (self.offsets[index] + starts)[:, None] + steps[None, :]
        positions = positions.clamp_(max=self.values.shape[0] - 1)
        batch = self.values[positions]
        if batch.is_floating_point():
            batch = batch.float().masked_fill(padding_mask.unsqueeze(-1), 0.0)
        else:
            batch = batch.masked_fill(padding_mask, 0)
        return batch, padding_mask

    def gather(self, index: np.ndarray, max_length: int = 0,
               rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded batch of the sequences at `index`, as wide as its longest (cropped) sequence: `plan` then
        `take`; see both for the arguments and results."""
        plan = self.plan(index, max_length, rng)
        return self.take(torch.from_numpy(plan).to(self.device, non_blocking=True), int(plan[2].max()))


def read_phone_text(path: str | Path, inventory: PhoneInventory) -> list[np.ndarray]:
    """Phonemised text (one sentence of space-separated phones per line) -> phone-id arrays.

    Sentences with a phone outside the inventory are dropped and counted in the error if all are.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: phone text not found (build it with `python -m asr_gan.text`)")
    sentences, unknown = [], 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 ({err})") from None
    for line in lines:
        phones = line.split()
        if not phones:
            continue
        if any(p not in inventory for p in phones):
            unknown += 1
            continue
        sentences.append(np.array(inventory.encode(phones), dtype=np.int64))
    if not sentences:
        raise ValueError(f"{path}: no usable sentence ({unknown} had phones outside the inventory)")
    return sentences


def feature_statistics(bank: SequenceBank, chunk: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (D,) over every stored position, accumulated in float64 chunk by chunk
    (a float64 copy of the whole bank would double a large split's device memory)."""
    total = torch.zeros(bank.values.shape[1], dtype=torch.float64, device=bank.values.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, bank.values.shape[0], chunk):
        part = bank.values[start: start + chunk].double()
        total += part.sum(0)
        total_sq += (part * part).sum(0)
    count = bank.values.shape[0]
    mean = total / count
    variance = (total_sq - count * mean * mean) / max(count - 1, 1)
    return mean.float(), variance.clamp(min=0.0).sqrt().float()


def load_feature_sequences(path: str) -> tuple[list[np.ndarray], list[str]]:
    """Non-empty sequences of a stored FeatureSet and their utterance ids."""
    from asr_gan.features.storage import FeatureSet

    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: feature set not found (extract it with `python -m asr_gan.features`)")
    features = FeatureSet(path)
    keep = [i for i in range(len(features)) if features.lengths[i] > 0]
    if not keep:
        raise ValueError(f"{path}: every utterance has zero feature rows")
    return [np.asarray(features[i], dtype=np.float32) for i in keep], [features.utt_ids[i] for i in keep]


def read_segment_labels(path: str, utt_ids: list[str], sequences: list[np.ndarray],
                        inventory: PhoneInventory) -> list[np.ndarray]:
    """Phone ids of every feature row (`utt ph ...` per line), in the order of `utt_ids`; every utterance
    needs a line with exactly one phone per row."""
    from asr_gan.train.ctc_data import read_phone_labels

    labels = read_phone_labels(path)
    out = []
    for utt, rows in zip(utt_ids, sequences):
        if utt not in labels:
            raise ValueError(f"{path}: no labels for {utt}")
        if len(labels[utt]) != len(rows):
            raise ValueError(f"{path}: {utt} has {len(labels[utt])} labels for {len(rows)} feature rows")
        unknown = sorted({p for p in labels[utt] if p not in inventory})
        if unknown:
            raise ValueError(f"{path}: {utt} has phones not in the inventory: {unknown}")
        out.append(np.asarray(inventory.encode(labels[utt]), dtype=np.int64))
    return out
