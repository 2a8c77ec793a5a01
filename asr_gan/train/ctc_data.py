"""Labelled features for CTC training: phone label files, features joined with them by utterance id, and
length-bucketed padded batches.

`read_phone_labels` / `write_phone_labels` read and write Kaldi-style `utt_id ph1 ph2 ...` files, the format of
references (`text/<split>.phn`) and of pseudo-labels alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from asr_gan.text.phones import PhoneInventory


@dataclass
class LabelledSet:
    """Features with phone-index labels, aligned by position.

    `features` is anything indexable returning (T, D) float arrays: a `FeatureSet` or a list of arrays.
    """

    utt_ids: list[str]
    features: Sequence[np.ndarray]
    labels: list[list[int]]
    # Positions into the underlying feature store (a FeatureSet holds utterances without labels too).
    rows: list[int]

    def __len__(self) -> int:
        return len(self.utt_ids)

    def frames(self, i: int) -> np.ndarray:
        return np.asarray(self.features[self.rows[i]], dtype=np.float32)

    def length(self, i: int) -> int:
        return int(np.shape(self.features[self.rows[i]])[0])


def read_phone_labels(path: str | Path) -> dict[str, list[str]]:
    """Read Kaldi-style `utt_id ph1 ph2 ...` lines (`text/<split>.phn`); an utterance may have no phones."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: phone labels not found (write them with `python -m asr_gan.text`)")
    labels: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] in labels:
            raise ValueError(f"{path}:{lineno}: utterance {parts[0]!r} listed twice")
        labels[parts[0]] = parts[1:]
    return labels


def write_phone_labels(path: str | Path, labels: dict[str, list[str]]) -> None:
    """Write `utt_id ph1 ph2 ...` lines, the format `read_phone_labels` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join([utt, *phones]) + "\n" for utt, phones in labels.items()), encoding="utf-8")


def pair_features_with_labels(utt_ids: Sequence[str], features: Sequence[np.ndarray],
                              labels: dict[str, list[str]], inventory: PhoneInventory,
                              source: str = "labels") -> tuple[LabelledSet, dict[str, int]]:
    """Join features and labels by utterance id; skip (and count) what cannot be used.

    Returns:
        (the labelled set, {"no_label": n, "unknown_phone": n, "empty": n}).
    """
    skipped = {"no_label": 0, "unknown_phone": 0, "empty": 0}
    kept_ids, kept_labels, rows = [], [], []
    for row, utt in enumerate(utt_ids):
        phones = labels.get(utt)
        if phones is None:
            skipped["no_label"] += 1
            continue
        if not phones or np.shape(features[row])[0] == 0:
            skipped["empty"] += 1
            continue
        if any(p not in inventory for p in phones):
            skipped["unknown_phone"] += 1
            continue
        kept_ids.append(utt)
        kept_labels.append(inventory.encode(phones))
        rows.append(row)
    if not kept_ids:
        raise ValueError(f"{source}: no utterance has both features and usable labels (skipped: {skipped}); "
                         "check that the label file's utterance ids match the feature set's utt_ids.txt")
    return LabelledSet(kept_ids, features, kept_labels, rows), skipped


def load_feature_set(path: str | Path):
    """Open a stored `FeatureSet` (asr_gan.features.storage)."""
    from asr_gan.features.storage import FeatureSet

    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: feature set not found (extract it with `python -m asr_gan.features`)")
    return FeatureSet(path)


def length_batches(lengths: Sequence[int], batch_frames: int, shuffle: bool, rng: random.Random) -> list[list[int]]:
    """Group positions of similar length so that batch_size * longest <= batch_frames (at least one each)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * max(lengths[i], 1) > batch_frames:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def pad_batch(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (T_i, D) -> x (B, T_max, D) zero-padded, padding_mask (B, T_max) True = pad."""
    lengths = [a.shape[0] for a in arrays]
    x = torch.zeros(len(arrays), max(lengths), arrays[0].shape[1])
    mask = torch.ones(len(arrays), max(lengths), dtype=torch.bool)
    for b, a in enumerate(arrays):
        x[b, : a.shape[0]] = torch.tensor(a, dtype=torch.float32)  # copies: memory-mapped arrays are read-only
        mask[b, : a.shape[0]] = False
    return x, mask


def feature_statistics(features: Sequence[np.ndarray], rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (D,) over all frames of `rows`; std floored to avoid division by ~0."""
    total = total_sq = None
    count = 0
    for row in rows:
        a = np.asarray(features[row], dtype=np.float64)
        total = a.sum(0) if total is None else total + a.sum(0)
        total_sq = (a**2).sum(0) if total_sq is None else total_sq + (a**2).sum(0)
        count += a.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(np.maximum(std, 1e-3), dtype=torch.float32)


def load_labelled(features_dir: str, labels_path: str, inventory: PhoneInventory) -> LabelledSet:
    features = load_feature_set(features_dir)
    data, skipped = pair_features_with_labels(features.utt_ids, features, read_phone_labels(labels_path),
                                              inventory, source=f"{features_dir} + {labels_path}")
    if any(skipped.values()):
        print(f"[ctc] {features_dir}: {len(data)} utterances used, skipped {skipped}")
    return data
