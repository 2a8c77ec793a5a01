"""EM starts that labels of every row give: the emissions they count, how pure the clusters are, noisy variants.

`python -m asr_gan.lab.decipher --start-labels` replaces its restarts with one EM run from here. With the truth's
labels (e.g. `asr_gan.lab.oracle_segments`) that asks whether the truth is the model's best fit; with a label-free
reading (a GAN's, `asr_gan.lab.row_labels`) it is a start like any other. `noise` hands some clusters to wrong
phones first: how close to the truth must a start be for EM to reach the truth's basin?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from asr_gan.lab import context_hmm


@dataclass
class LabelStart:
    """What labels of every row say about the clusters: the EM start they count, and two readings."""

    emissions: torch.Tensor  # (P, K): P(cluster | phone) counted from the labels; (P, P+1, K) with context
    purity: float  # share of rows whose cluster's most frequent phone is their own
    lookup: list[np.ndarray]  # every row read as its cluster's most frequent phone
    at_start: list[np.ndarray] = field(default_factory=list)  # Viterbi paths of the HMM at its start
    kept: float = 1.0  # share of rows whose cluster the start still gives to its most frequent phone (`noise`)


def reassign_clusters(counts: np.ndarray, noise: float, phone_shares: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A start `noise` away from the labels: every cluster, with probability `noise`, hands all its counts to one
    phone drawn by `phone_shares` (the text's frequencies), as a wrong reading of that cluster would. `counts`:
    (P, K), or (P, P+1, K) with the next phone. Returns the new counts and each cluster's phone after the move
    (-1 where it was not moved)."""
    clusters = counts.shape[-1]
    moved = rng.random(clusters) < noise
    targets = np.where(moved, rng.choice(len(phone_shares), size=clusters, p=phone_shares / phone_shares.sum()), -1)
    return move_clusters(counts, targets), targets


def move_clusters(counts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """`counts` ((P, K) or (P, P+1, K)) with every cluster c whose `targets[c]` >= 0 handed whole to that phone."""
    out = counts.copy()
    for cluster in np.flatnonzero(targets >= 0):
        column = out[..., cluster].sum(0)
        out[..., cluster] = 0.0
        out[targets[cluster], ..., cluster] = column
    return out


def label_start(cluster_seqs: Sequence[np.ndarray], row_labels: Sequence[np.ndarray], num_phones: int,
                num_clusters: int, context: bool = False, backoff: float = 5.0, noise: float = 0.0,
                phone_shares: np.ndarray | None = None, rng: np.random.Generator | None = None) -> LabelStart:
    """Count P(cluster | phone), or P(cluster | phone, next phone) with `context`, from the labels of every row
    (`row_labels[i]`: phone ids of `cluster_seqs[i]`). `noise` > 0 moves that share of the clusters to phones
    drawn by `phone_shares` first (`reassign_clusters`); purity and the lookup still describe the labels."""
    counts = np.zeros((num_phones, num_clusters))
    pairs = np.zeros((num_phones, num_phones + 1, num_clusters)) if context else None
    for symbols, phones in zip(cluster_seqs, row_labels):
        np.add.at(counts, (phones, symbols), 1.0)
        if pairs is not None:
            np.add.at(pairs, (phones, context_hmm.next_phones(phones, num_phones), symbols), 1.0)
    best = counts.argmax(0)
    purity = float(counts.max(0).sum() / max(1.0, counts.sum()))
    kept = 1.0
    if noise > 0:
        if phone_shares is None or rng is None:
            raise ValueError("label_start: noise needs phone_shares and rng")
        moved_counts, targets = reassign_clusters(counts, noise, phone_shares, rng)
        if pairs is not None:  # the same clusters move to the same phones, whatever phone follows
            pairs = move_clusters(pairs, targets)
        changed = (targets >= 0) & (targets != best)
        kept = float(1.0 - counts[:, changed].sum() / max(1.0, counts.sum()))
        counts = moved_counts
    if pairs is not None:
        emissions = context_hmm.pair_emissions(torch.from_numpy(pairs), backoff)
    else:
        emissions = torch.from_numpy((counts + 1e-4) / (counts + 1e-4).sum(1, keepdims=True))
    return LabelStart(emissions, purity, [best[s] for s in cluster_seqs], kept=kept)
