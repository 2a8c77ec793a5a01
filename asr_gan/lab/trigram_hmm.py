"""A phone HMM whose moves follow the text's phone trigram: the decipherment's model with a stronger language model.

The plain decipherment HMM (`asr_gan.lab.phone_hmm.PhoneHmm`) moves from phone p to phone q by the text's bigram
P(q | p). Decipherment of substitution ciphers is known to need more context than a bigram (Ravi and Knight
2008): here the hidden state is a pair (o, p), the phone p now and the phone o before it (or the sentence start),
and a move goes from (o, p) to (p, q) with the text's trigram P(q | o, p). A phone still spans one or more
segments through its self-loop, and a segment is still emitted by its phone alone, P(cluster | p), so the
emissions are those of the plain model and carry over between the two.

The trigram is Witten-Bell interpolated with the bigram: a context (o, p) seen n times with t distinct next
phones trusts its own counts with weight n / (n + t). Forward-backward and Viterbi use the pair structure:
O(P^3) per segment (each new state (p, q) sums over the P + 1 phones o before p), not the O(P^4) of a dense
transition matrix over pairs.

Shapes: P phones; pair states (P + 1, P), the row P of the first axis being "no phone before" (the sentence
start); K clusters; padded chunks of B sequences of width T with a mask (True = real position), as in
`phone_hmm.expected_counts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

_FLOOR = 1e-300
MAX_CHUNK = 64  # sequences per padded chunk: a pair state's forward pass holds P + 1 times a phone's


@dataclass
class TrigramHmm:
    """start (P,), trigram (P+1, P, P) with P(q | o, p) in [o, p, q] (o = P: the sentence start), stay (P,),
    emissions (P, K)."""

    start: torch.Tensor
    trigram: torch.Tensor
    stay: torch.Tensor
    emissions: torch.Tensor

    @property
    def num_phones(self) -> int:
        return self.start.shape[0]

    def to(self, device: torch.device | str) -> TrigramHmm:
        return TrigramHmm(self.start.to(device), self.trigram.to(device), self.stay.to(device),
                          self.emissions.to(device))

    def moves(self) -> torch.Tensor:
        """P(leave (o, p) for (p, q)) (P+1, P, P): the trigram times p's chance of not staying."""
        return self.trigram * (1 - self.stay)[None, :, None]

    def first_states(self) -> torch.Tensor:
        """P(first state = (o, p)) (P+1, P): only o = start."""
        first = torch.zeros(self.num_phones + 1, self.num_phones, dtype=self.start.dtype, device=self.start.device)
        first[-1] = self.start
        return first


def text_trigram(text: Sequence[np.ndarray], num_phones: int, smoothing: float = 0.1) -> tuple[torch.Tensor,
                                                                                               torch.Tensor]:
    """Start distribution (P,) and trigram (P+1, P, P) of phone-id sentences: Witten-Bell interpolation of the
    trigram counts with the add-`smoothing` bigram, each row a distribution over the next phone. Sentences
    without an end symbol, as in the plain model."""
    start = np.full(num_phones, smoothing)
    pairs = np.full((num_phones, num_phones), smoothing)
    triples = np.zeros((num_phones + 1, num_phones, num_phones))
    for sentence in text:
        sentence = np.asarray(sentence, dtype=np.int64)
        if not len(sentence):
            continue
        start[sentence[0]] += 1
        np.add.at(pairs, (sentence[:-1], sentence[1:]), 1.0)
        before = np.concatenate([[num_phones], sentence[:-2]]) if len(sentence) > 1 else np.zeros(0, np.int64)
        np.add.at(triples, (before, sentence[:-1], sentence[1:]), 1.0)
    bigram = pairs / pairs.sum(1, keepdims=True)
    seen = triples.sum(2, keepdims=True)
    types = (triples > 0).sum(2, keepdims=True)
    weight = seen / np.maximum(seen + types, 1.0)
    trigram = weight * triples / np.maximum(seen, 1.0) + (1 - weight) * bigram[None]
    return torch.from_numpy(start / start.sum()), torch.from_numpy(trigram)


def forward_backward(hmm: TrigramHmm, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     float]:
    """One E-step on a padded chunk: expected emission counts (P, K), expected self-loop uses and other moves
    out of each phone (2, P), and the log-likelihood. Scaled; padding positions copy the last real state."""
    batch, width = obs.shape
    phones, clusters = hmm.emissions.shape
    dtype, device = hmm.emissions.dtype, hmm.emissions.device
    emit = hmm.emissions.T[obs]  # (B, T, P): P(cluster_t | p)
    move = hmm.moves()
    stay = hmm.stay
    alpha = torch.empty(width, batch, phones + 1, phones, dtype=dtype, device=device)
    scale = torch.ones(width, batch, dtype=dtype, device=device)
    a = hmm.first_states()[None] * emit[:, 0, None, :]
    scale[0] = a.sum((1, 2)).clamp_min(_FLOOR)
    alpha[0] = a / scale[0, :, None, None]
    for t in range(1, width):
        previous = alpha[t - 1]
        a = previous * stay
        a[:, :phones] += torch.einsum("bop,opq->bpq", previous, move)
        a = a * emit[:, t, None, :]
        total = a.sum((1, 2)).clamp_min(_FLOOR)
        real = mask[:, t]
        alpha[t] = torch.where(real[:, None, None], a / total[:, None, None], previous)
        scale[t] = torch.where(real, total, torch.ones_like(total))
    beta = torch.ones(batch, phones + 1, phones, dtype=dtype, device=device)
    occupancy = torch.empty(width, batch, phones, dtype=dtype, device=device)
    occupancy[width - 1] = alpha[width - 1].sum(1)
    stays = torch.zeros(phones, dtype=dtype, device=device)
    leaves = torch.zeros(phones, dtype=dtype, device=device)
    for t in range(width - 2, -1, -1):
        real_next = mask[:, t + 1]
        carried = beta * emit[:, t + 1, None, :] / scale[t + 1, :, None, None]  # over the state at t + 1
        new = carried * stay
        new = new + torch.einsum("opq,bpq->bop", move, carried[:, :phones])
        beta = torch.where(real_next[:, None, None], new, beta)
        posterior = alpha[t] * beta
        occupancy[t] = posterior.sum(1)
        stayed = (alpha[t] * stay * carried).sum(1) * real_next[:, None]
        stays += stayed.sum(0)
        leaves += (posterior.sum(1) * real_next[:, None] - stayed).sum(0)
    gamma = occupancy.transpose(0, 1)[mask]  # (N, P)
    counts = torch.zeros(clusters, phones, dtype=dtype, device=device).index_add_(0, obs[mask], gamma).T
    return counts, torch.stack([stays, leaves]), float(torch.log(scale).sum())


def viterbi(hmm: TrigramHmm, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best phone per position (B, T) of a padded chunk (padding positions repeat the last phone)."""
    batch, width = obs.shape
    phones = hmm.num_phones
    device = obs.device
    log_emit = hmm.emissions.clamp_min(_FLOOR).log().T[obs]  # (B, T, P)
    # (p, p) -> (p, p) is a self-loop and a repeat of p at once: one step whose probability is their sum
    move = hmm.moves()
    repeat = torch.arange(phones, device=device)
    stay = hmm.stay[None].expand(phones + 1, -1).clone()
    stay[repeat, repeat] += move[repeat, repeat, repeat]
    move[repeat, repeat, repeat] = 0.0
    log_stay = stay.clamp_min(_FLOOR).log()  # (P+1, P)
    log_move = move.clamp_min(_FLOOR).log()  # (P+1, P, P)
    score = hmm.first_states().clamp_min(_FLOOR).log()[None] + log_emit[:, 0, None, :]
    # back[t, b, o, p]: the phone before o at t - 1 (the state (that, o) moved to (o, p)), or -1 for a stay
    back = torch.empty(width, batch, phones + 1, phones, dtype=torch.int16, device=device)
    back[0] = -1
    for t in range(1, width):
        stayed = score + log_stay
        moved, before = (score[:, :, :, None] + log_move[None]).max(1)  # over o: (B, p, q)
        new = stayed.clone()
        better = moved > new[:, :phones]
        new[:, :phones] = torch.where(better, moved, new[:, :phones])
        step = torch.full((batch, phones + 1, phones), -1, dtype=torch.int16, device=device)
        step[:, :phones] = torch.where(better, before.to(torch.int16), step[:, :phones])
        real = mask[:, t]
        score = torch.where(real[:, None, None], new + log_emit[:, t, None, :], score)
        back[t] = torch.where(real[:, None, None], step, torch.full_like(step, -1))
    path = torch.zeros(batch, width, dtype=torch.long, device=device)
    best = score.reshape(batch, -1).argmax(1)
    before, current = best // phones, best % phones
    rows = torch.arange(batch, device=device)
    for t in range(width - 1, -1, -1):
        path[:, t] = current
        step = back[t, rows, before, current].long()
        moved = step >= 0
        # a move came from (step, before): the phone now is `before`, the one before it `step`
        current = torch.where(moved, before, current)
        before = torch.where(moved, step, before)
    return path
