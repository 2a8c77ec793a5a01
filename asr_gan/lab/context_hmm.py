"""A phone HMM whose emissions depend on the next phone: the decipherment's model for coarticulated units.

The plain decipherment HMM (`asr_gan.lab.phone_hmm.PhoneHmm`) emits a cluster from a phone alone. Real segments
also carry their neighbour (coarticulation), and then EM leaves the true reading for one it finds more likely
(docs/gan_investigation.md, "The decipherment's model leaves the truth on speech"). Here the hidden state is a
pair (phone p, the phone q after it, or the end of the sentence), and a segment is emitted with P(cluster | p, q).
The text fixes the moves: (p, q) either stays (p's self-loop, learnt, as a phone spans one or more segments) or
moves on to (q, r) with the text's bigram P(r | q); a sentence ends in a state (p, end).

A pair's emissions are smoothed toward its phone's emissions over all next phones (`backoff` pseudo-counts), so
rare pairs borrow from their phone. Forward-backward and Viterbi use the pair structure: O(P^2) per segment, not
the O(P^4) of a dense transition matrix over pairs, so a 40-phone inventory stays cheap.

Shapes: P phones, P + 1 next-phone slots (the last is the end), K clusters; padded chunks of B sequences of
width T with a mask (True = real position), as in `phone_hmm.expected_counts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

_FLOOR = 1e-300


@dataclass
class ContextHmm:
    """start (P,), bigram (P, P+1) row-stochastic with the end as the last column, stay (P,),
    emissions (P, P+1, K)."""

    start: torch.Tensor
    bigram: torch.Tensor
    stay: torch.Tensor
    emissions: torch.Tensor

    @property
    def num_phones(self) -> int:
        return self.start.shape[0]

    def to(self, device: torch.device | str) -> "ContextHmm":
        return ContextHmm(self.start.to(device), self.bigram.to(device), self.stay.to(device),
                          self.emissions.to(device))

    def start_pairs(self) -> torch.Tensor:
        """P(first state = (p, q)) (P, P+1)."""
        return self.start[:, None] * self.bigram


def text_counts(text: Sequence[np.ndarray], num_phones: int, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """Add-`smoothing` counts of phone-id sentences: first phones (P,), and phone pairs (P, P+1) whose last
    column counts the sentences each phone ends."""
    start = np.full(num_phones, smoothing)
    counts = np.full((num_phones, num_phones + 1), smoothing)
    for sentence in text:
        if len(sentence):
            start[sentence[0]] += 1
            np.add.at(counts, (sentence[:-1], sentence[1:]), 1.0)
            counts[sentence[-1], num_phones] += 1
    return start, counts


def text_bigram_with_end(text: Sequence[np.ndarray], num_phones: int,
                         smoothing: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Start (P,) and bigram (P, P+1) of phone-id sentences; the last column is P(sentence ends | phone)."""
    start, counts = text_counts(text, num_phones, smoothing)
    return (torch.from_numpy(start / start.sum()),
            torch.from_numpy(counts / counts.sum(1, keepdims=True)))


def _end_mask(num_phones: int, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    end = torch.zeros(num_phones, num_phones + 1, dtype=dtype, device=device)
    end[:, num_phones] = 1.0
    return end


def _moves_in(alpha: torch.Tensor, hmm: ContextHmm) -> torch.Tensor:
    """Probability of entering each state (q, r) from a different phone: (B, P, P+1), from alpha (B, P, P+1)."""
    phones = hmm.num_phones
    # mass leaving p towards q: sum_p alpha(p, q) (1 - stay_p), for real next phones q (the end has no successor)
    leaving = (alpha[:, :, :phones] * (1 - hmm.stay)[None, :, None]).sum(1)  # (B, P) indexed by q
    return leaving[:, :, None] * hmm.bigram[None]


def forward_backward(hmm: ContextHmm, obs: torch.Tensor,
                     mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One E-step on a padded chunk: expected emission counts (P, P+1, K), expected self-loop uses and moves out of
    each phone (2, P), and the log-likelihood.

    Scaled forward-backward; padding positions carry the last real position's state, and every sequence must end
    in a state (p, end)."""
    batch, width = obs.shape
    phones = hmm.num_phones
    dtype, device = hmm.emissions.dtype, hmm.emissions.device
    emit = hmm.emissions.permute(2, 0, 1)[obs]  # (B, T, P, P+1)
    end = _end_mask(phones, dtype, device)
    stay = hmm.stay[None, :, None]
    alpha = torch.empty(batch, width, phones, phones + 1, dtype=dtype, device=device)
    scale = torch.ones(batch, width, dtype=dtype, device=device)
    a = hmm.start_pairs()[None] * emit[:, 0]
    scale[:, 0] = a.sum((1, 2)).clamp_min(_FLOOR)
    alpha[:, 0] = a / scale[:, 0, None, None]
    for t in range(1, width):
        previous = alpha[:, t - 1]
        a = (previous * stay + _moves_in(previous, hmm)) * emit[:, t]
        real = mask[:, t]
        total = a.sum((1, 2)).clamp_min(_FLOOR)
        alpha[:, t] = torch.where(real[:, None, None], a / total[:, None, None], previous)
        scale[:, t] = torch.where(real, total, torch.ones_like(total))
    final = (alpha[:, -1] * end).sum((1, 2)).clamp_min(_FLOOR)  # (B,): the ending mass of the scaled alpha
    beta = torch.empty_like(alpha)
    beta[:, -1] = end.expand(batch, -1, -1)
    stays = torch.zeros(phones, dtype=dtype, device=device)
    leaves = torch.zeros(phones, dtype=dtype, device=device)
    for t in range(width - 2, -1, -1):
        real_next = mask[:, t + 1]
        carried = emit[:, t + 1] * beta[:, t + 1] / scale[:, t + 1, None, None]  # (B, P, P+1)
        # entering (q, r) next: sum_r bigram(q, r) carried(q, r), for each real next phone q
        onward = (hmm.bigram[None] * carried).sum(2)  # (B, P) indexed by q
        moved = torch.zeros_like(carried)
        moved[:, :, :phones] = onward[:, None, :] * (1 - hmm.stay)[None, :, None]
        b = stay * carried + moved
        beta[:, t] = torch.where(real_next[:, None, None], b, beta[:, t + 1])
        weight = (real_next / final)[:, None, None]
        stay_part = alpha[:, t] * stay * carried * weight
        stays += stay_part.sum((0, 2))
        leaves += (alpha[:, t] * moved * weight).sum((0, 2))
    gamma = (alpha * beta)[mask] / final[:, None, None, None].expand(-1, width, 1, 1)[mask]  # (N, P, P+1)
    counts = torch.zeros(hmm.emissions.shape[2], phones, phones + 1, dtype=dtype, device=device)
    counts.index_add_(0, obs[mask], gamma)
    log_likelihood = float(torch.log(scale).sum() + torch.log(final).sum())
    return counts.permute(1, 2, 0), torch.stack([stays, leaves]), log_likelihood


def _log(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(_FLOOR).log()


def viterbi(hmm: ContextHmm, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best phone per position (B, T) of a padded chunk, ending in a state (p, end); padding repeats the last."""
    batch, width = obs.shape
    phones = hmm.num_phones
    log_emit = _log(hmm.emissions).permute(2, 0, 1)[obs]  # (B, T, P, P+1)
    # (p, p) -> (p, p) is the self-loop and the text's repeat of p at once
    self_loop = hmm.stay[:, None].expand(phones, phones + 1).clone()
    repeat = torch.arange(phones, device=obs.device)
    self_loop[repeat, repeat] += (1 - hmm.stay) * hmm.bigram[repeat, repeat]
    log_stay, log_leave, log_bigram = _log(self_loop)[None], _log(1 - hmm.stay), _log(hmm.bigram)
    score = _log(hmm.start_pairs())[None] + log_emit[:, 0]
    # back[t](q, r): the p of the state (p, q) the path came from, or -1 when it stayed in (q, r)
    back = torch.full((batch, width, phones, phones + 1), -1, dtype=torch.long, device=obs.device)
    for t in range(1, width):
        stayed = score + log_stay
        leaving = score[:, :, :phones] + log_leave[None, :, None]  # (B, p, q)
        best_leave, from_p = leaving.max(1)  # (B, q)
        moved = best_leave[:, :, None] + log_bigram[None]
        take_move = moved > stayed
        new = torch.where(take_move, moved, stayed) + log_emit[:, t]
        real = mask[:, t]
        score = torch.where(real[:, None, None], new, score)
        came = torch.where(take_move & real[:, None, None], from_p[:, :, None].expand(-1, -1, phones + 1), -1)
        back[:, t] = came
    ending = score[:, :, phones]  # (B, P): states (p, end)
    p = ending.argmax(1)
    q = torch.full_like(p, phones)
    path = torch.zeros(batch, width, dtype=torch.long, device=obs.device)
    rows = torch.arange(batch, device=obs.device)
    for t in range(width - 1, -1, -1):
        path[:, t] = p
        came_from = back[rows, t, p, q]
        moved = came_from >= 0
        p, q = torch.where(moved, came_from, p), torch.where(moved, p, q)
    return path


def pair_emissions(counts: torch.Tensor, backoff: float) -> torch.Tensor:
    """Emission counts (P, P+1, K) -> P(cluster | p, q), each pair smoothed toward its phone's pooled emissions
    with `backoff` pseudo-counts."""
    phone_counts = counts.sum(1) + 1e-4  # (P, K)
    phone_emissions = phone_counts / phone_counts.sum(1, keepdim=True)
    smoothed = counts + backoff * phone_emissions[:, None, :] + 1e-8
    return smoothed / smoothed.sum(2, keepdim=True)


def next_phones(phones: np.ndarray, end: int) -> np.ndarray:
    """The phone after each row's own, one id per row: rows of one run of a phone share the next run's phone;
    the last run gets `end`."""
    changes = np.flatnonzero(np.diff(phones)) + 1  # first row of every run after the first
    following = np.append(phones[changes], end)  # the phone after each run
    return following[np.searchsorted(changes, np.arange(len(phones)), side="right")]


def self_loops(moves: torch.Tensor) -> torch.Tensor:
    """Each phone's self-loop probability from an E-step's expected (stays, moves out) (2, P); the plain and the
    pair model share it."""
    return (moves[0] / (moves.sum(0) + 1e-12)).clamp(0.02, 0.98)


def m_step(hmm: ContextHmm, counts: torch.Tensor, moves: torch.Tensor, backoff: float) -> ContextHmm:
    """New emissions (`pair_emissions`) and self-loops from one E-step's expected counts."""
    return ContextHmm(hmm.start, hmm.bigram, self_loops(moves), pair_emissions(counts, backoff))
