"""EODM's N-gram statistics: the text's phone N-gram frequencies and the generator's expected ones.

Both sides are counted as run-merged sequences, the view the GAN's discriminator has. Pooled segments cut a
phone in pieces, so neighbouring outputs often hold one phone, which text rarely repeats; merging repeats is
not differentiable, but its expectation is. With a phone drawn independently at every position from p_t, the
expected count of an N-gram z (no two neighbours equal) in the merged output counts a run of z_1 where it ends,
a run of z_N where it starts, and lets the runs between cover any number of positions:

    unigram: sum_t p_t(a) (1 - p_{t+1}(a))        bigram: sum_t p_t(a) p_{t+1}(b)
    longer:  F_i(t) = p_t(z_i) (F_i(t-1) + F_{i-1}(t-1)), F_1 = p(z_1); count = sum_t p_t(z_N) F_{N-1}(t-1)

This is exact under that independence (tests/test_eodm.py checks it against enumerating every sequence), and
the expected number of N-grams of an utterance is its expected number of runs (positions minus
sum_t <p_t, p_{t+1}>) minus N - 1. A phone spread over three segments thus costs nothing and needs no learnt
repeat model, where counting the outputs as they are would charge the true reading for every repeat. The text
is merged the same way before counting, so a phone doubled across a word boundary is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass
class NgramTarget:
    """The text's kept N-grams of one order: ids (K, N), frequencies (K,) summing to 1, share of all N-grams."""

    ngrams: torch.Tensor
    probs: torch.Tensor
    kept_share: float


def text_ngram_targets(sentences: list[np.ndarray], num_phones: int, max_order: int,
                       top_k: int) -> list[NgramTarget]:
    """The top_k most frequent N-grams of every order 1..max_order of the run-merged sentences (phone ids)."""
    flat = np.concatenate(sentences)
    sentence = np.repeat(np.arange(len(sentences)), [len(s) for s in sentences])
    keep = np.ones(len(flat), dtype=bool)
    keep[1:] = (flat[1:] != flat[:-1]) | (sentence[1:] != sentence[:-1])
    flat, sentence = flat[keep], sentence[keep]
    if float(num_phones) ** max_order >= 2**62:
        raise ValueError(f"{num_phones} phones ** order {max_order} N-grams do not fit 64-bit codes")
    targets = []
    for order in range(1, max_order + 1):
        starts = np.arange(len(flat) - order + 1)
        starts = starts[sentence[starts] == sentence[starts + order - 1]]
        if len(starts) == 0:
            raise ValueError(f"no sentence of the phone text has {order} phones after merging repeats")
        codes = np.zeros(len(starts), dtype=np.int64)
        for i in range(order):
            codes = codes * num_phones + flat[starts + i]
        unique, counts = np.unique(codes, return_counts=True)
        best = np.argsort(-counts, kind="stable")[:top_k]
        ids = np.zeros((len(best), order), dtype=np.int64)
        rest = unique[best].copy()
        for i in reversed(range(order)):
            ids[:, i], rest = rest % num_phones, rest // num_phones
        kept = counts[best].astype(np.float64)
        targets.append(NgramTarget(torch.from_numpy(ids), torch.from_numpy(kept / kept.sum()).float(),
                                   float(kept.sum() / counts.sum())))
    return targets


def _extend_by_runs(phone: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
    """F(t) = phone(t) (F(t-1) + prefix(t-1)), F(0) = 0: the prefix followed by a run of the phone covering t.
    Both (B, T, K)."""
    # unbind once: a slice per step would cost a full-size gradient per step in the backward pass
    phones, prefixes = phone.unbind(1), prefix.unbind(1)
    run = torch.zeros_like(phones[0])
    steps = [run]
    for t in range(1, len(phones)):
        run = phones[t] * (run + prefixes[t - 1])
        steps.append(run)
    return torch.stack(steps, dim=1)


def _prefix_runs(probs: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
    """F of every prefix (K, M) of distinct phone ids: (B, T, K), F(t) = the prefix's runs with its last run
    covering t. Built level by level over the distinct shorter prefixes, so a prefix shared by many N-grams is
    extended once."""
    last = probs[:, :, prefixes[:, -1]]
    if prefixes.shape[1] == 1:
        return last
    parents, parent_of = torch.unique(prefixes[:, :-1], dim=0, return_inverse=True)
    return _extend_by_runs(last, _prefix_runs(probs, parents)[:, :, parent_of])


def expected_ngram_counts(probs: torch.Tensor, ngrams: torch.Tensor) -> torch.Tensor:
    """Expected occurrences (K,) of each N-gram (K, N) in the run-merged outputs, summed over the batch.

    The runs are followed for the distinct (N-1)-prefixes only; their counts followed by every phone come from one
    matrix product over positions, from which the K N-grams are read. A text's top 10k trigrams have at most as many
    prefixes as it has bigrams (1263 on the demo's), so this is far cheaper than following every N-gram's runs.

    Args:
        probs: (B, T, P) per-position phone distributions, zero at padding (which must follow the real positions).
        ngrams: (K, N) phone ids, no two neighbours equal.
    """
    if ngrams.shape[1] == 1:
        picked = probs[:, :, ngrams[:, 0]]
        after = F.pad(picked[:, 1:], (0, 0, 0, 1))
        return (picked * (1.0 - after)).sum(dim=(0, 1))
    prefixes, prefix_of = torch.unique(ngrams[:, :-1], dim=0, return_inverse=True)
    runs = _prefix_runs(probs, prefixes)  # (B, T, K')
    # followed[k, c] = sum over t of F_k(t - 1) p_t(c)
    followed = runs[:, :-1].reshape(-1, runs.shape[-1]).T @ probs[:, 1:].reshape(-1, probs.shape[-1])
    return followed[prefix_of, ngrams[:, -1]]


def expected_ngram_total(probs: torch.Tensor, padding_mask: torch.Tensor, order: int) -> torch.Tensor:
    """Expected number of N-grams of the run-merged outputs (a sum over the batch). probs (B, T, P) zero at
    padding, padding_mask (B, T) True = pad."""
    repeats = (probs[:, 1:] * probs[:, :-1]).sum(dim=(1, 2))
    runs = (~padding_mask).sum(dim=1).to(probs.dtype) - repeats
    return (runs - (order - 1)).clamp(min=0.0).sum()
