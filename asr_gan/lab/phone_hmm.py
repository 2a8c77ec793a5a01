"""The decipherment's phone HMM: its inference (forward-backward, Viterbi, on torch), its EM starts and EM itself.

A cluster sequence is modelled by an HMM whose hidden states are phones. Transitions are fixed by the unpaired
text: a phone either stays (its own self-loop probability, learnt, since a phone spans one or more segments) or
moves on as the text's phone bigram says. Emissions P(cluster | phone) are learnt by EM (Baum-Welch), the classic
decipherment of substitution ciphers (Knight et al. 2006). EM's answer depends on where it starts: from random
emissions it stalls in local optima, so every restart starts from a frequency match (a phone emits most likely
the clusters whose frequency rank is near its own rank in the text), with multiplicative noise after the first.
The restart with the highest likelihood is kept: no transcription is read.

`fit` and `decode` also drive the two richer models, `asr_gan.lab.context_hmm` (emissions depend on the next
phone) and `asr_gan.lab.trigram_hmm` (moves by the text's trigram); those modules never import this one, so the
dispatch lives here. Clustering, files and the CLI are `asr_gan.lab.decipher`'s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.lab import context_hmm, trigram_hmm
from asr_gan.lab.context_hmm import ContextHmm
from asr_gan.lab.trigram_hmm import TrigramHmm

_FLOOR = 1e-300


@dataclass
class PhoneHmm:
    """Start (P,), text bigram transitions (P, P) row-stochastic, self-loop (P,), emissions (P, K)."""

    start: torch.Tensor
    bigram: torch.Tensor
    stay: torch.Tensor
    emissions: torch.Tensor

    def to(self, device: torch.device | str) -> PhoneHmm:
        return PhoneHmm(self.start.to(device), self.bigram.to(device), self.stay.to(device),
                        self.emissions.to(device))

    def transitions(self) -> torch.Tensor:
        eye = torch.eye(len(self.stay), dtype=self.bigram.dtype, device=self.bigram.device)
        return self.stay[:, None] * eye + (1 - self.stay)[:, None] * self.bigram


Hmm = PhoneHmm | ContextHmm | TrigramHmm


@dataclass
class DecipherResult:
    hmm: Hmm
    log_likelihoods: list[float] = field(default_factory=list)  # every restart's last (or its screening's last)
    start_log_likelihoods: list[float] = field(default_factory=list)  # at every restart's start
    selected: int = 0
    seconds: float = 0.0


def text_bigram(text: Sequence[np.ndarray], num_phones: int,
                smoothing: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Start distribution (P,) and row-stochastic bigram (P, P) of phone-id sentences, add-`smoothing`."""
    start, counts = context_hmm.text_counts(text, num_phones, smoothing)
    counts = counts[:, :num_phones]  # the plain model has no sentence end
    return (torch.from_numpy(start / start.sum()),
            torch.from_numpy(counts / counts.sum(1, keepdims=True)))


def frequency_init(cluster_counts: np.ndarray, phone_counts: np.ndarray, width: float,
                   rng: np.random.Generator | None) -> torch.Tensor:
    """Emissions (P, K) that favour clusters whose frequency rank (share of K) is near the phone's (share of P)."""
    phone_rank = np.argsort(np.argsort(-phone_counts)) / len(phone_counts)
    cluster_rank = np.argsort(np.argsort(-cluster_counts)) / len(cluster_counts)
    scores = np.exp(-np.abs(phone_rank[:, None] - cluster_rank[None, :]) / width)
    if rng is not None:
        scores = scores * (0.5 + rng.random(scores.shape))
    return torch.from_numpy(scores / scores.sum(1, keepdims=True))


def _pad(sequences: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    obs = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.bool)  # True = real position
    for i, s in enumerate(sequences):
        obs[i, :len(s)] = torch.from_numpy(np.asarray(s, dtype=np.int64))
        mask[i, :len(s)] = True
    return obs, mask


def _chunks(sequences: Sequence[np.ndarray], size: int) -> list[list[int]]:
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [order[i:i + size] for i in range(0, len(order), size)]


def expected_counts(hmm: PhoneHmm, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One E-step on a padded chunk: expected emission counts (P, K), expected self-loop uses and other moves
    out of each phone (2, P), and the log-likelihood.

    Scaled forward-backward; padding positions copy the last real state so they contribute nothing.
    """
    batch, width = obs.shape
    phones, clusters = hmm.emissions.shape
    trans = hmm.transitions()
    emit = hmm.emissions.T[obs]  # (B, T, P)
    dtype, device = trans.dtype, trans.device
    alpha = torch.empty(batch, width, phones, dtype=dtype, device=device)
    scale = torch.ones(batch, width, dtype=dtype, device=device)
    a = hmm.start * emit[:, 0]
    scale[:, 0] = a.sum(1).clamp_min(_FLOOR)
    alpha[:, 0] = a / scale[:, 0:1]
    for t in range(1, width):
        a = (alpha[:, t - 1] @ trans) * emit[:, t]
        real = mask[:, t]
        total = a.sum(1).clamp_min(_FLOOR)
        alpha[:, t] = torch.where(real[:, None], a / total[:, None], alpha[:, t - 1])
        scale[:, t] = torch.where(real, total, torch.ones_like(total))
    beta = torch.ones(batch, width, phones, dtype=dtype, device=device)
    stays = torch.zeros(phones, dtype=dtype, device=device)
    leaves = torch.zeros(phones, dtype=dtype, device=device)
    for t in range(width - 2, -1, -1):
        real_next = mask[:, t + 1]
        carried = emit[:, t + 1] * beta[:, t + 1] / scale[:, t + 1:t + 2]
        beta[:, t] = torch.where(real_next[:, None], carried @ trans.T, beta[:, t + 1])
        occupancy = alpha[:, t] * beta[:, t] * real_next[:, None]
        # the self-loop's share of p -> p (the text bigram can also repeat a phone)
        stay = alpha[:, t] * hmm.stay * carried * real_next[:, None]
        stays += stay.sum(0)
        leaves += (occupancy - stay).sum(0)
    gamma = (alpha * beta)[mask]  # (N, P)
    counts = torch.zeros(clusters, phones, dtype=dtype, device=device).index_add_(0, obs[mask], gamma).T
    return counts, torch.stack([stays, leaves]), float(torch.log(scale).sum())


def viterbi(hmm: PhoneHmm, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best phone per position (B, T) of a padded chunk (padding positions repeat the last phone)."""
    batch, width = obs.shape
    phones = hmm.emissions.shape[0]
    log_trans = hmm.transitions().clamp_min(_FLOOR).log()
    log_emit = hmm.emissions.clamp_min(_FLOOR).log().T[obs]
    score = hmm.start.clamp_min(_FLOOR).log() + log_emit[:, 0]
    back = torch.zeros(batch, width, phones, dtype=torch.long, device=obs.device)
    keep = torch.arange(phones, device=obs.device).expand(batch, phones)
    for t in range(1, width):
        best, arg = (score[:, :, None] + log_trans).max(1)
        real = mask[:, t]
        score = torch.where(real[:, None], best + log_emit[:, t], score)
        back[:, t] = torch.where(real[:, None], arg, keep)
    path = torch.zeros(batch, width, dtype=torch.long, device=obs.device)
    current = score.argmax(1)
    rows = torch.arange(batch, device=obs.device)
    for t in range(width - 1, -1, -1):
        path[:, t] = current
        current = back[rows, t, current]
    return path


def lookup_init(phone_counts: np.ndarray, num_clusters: int, rng: np.random.Generator) -> torch.Tensor:
    """Emissions (P, K) of a random hard reading: every cluster is given one phone, drawn by the phone's share of
    the text, and each phone emits mostly its clusters."""
    lookup = rng.choice(len(phone_counts), size=num_clusters, p=phone_counts / phone_counts.sum())
    scores = np.full((len(phone_counts), num_clusters), 1e-3)
    scores[lookup, np.arange(num_clusters)] = 1.0
    return torch.from_numpy(scores / scores.sum(1, keepdims=True))


def initial_stay(num_phones: int, stay: float | None) -> torch.Tensor:
    """Every phone's self-loop at the start of EM: `stay` when it is fixed, else 0.5 (then learnt)."""
    return torch.full((num_phones,), 0.5 if stay is None else stay, dtype=torch.float64)


def fit(cluster_seqs: Sequence[np.ndarray], num_clusters: int, text: Sequence[np.ndarray], num_phones: int,
        restarts: int = 8, iterations: int = 100, seed: int = 0, chunk: int = 256, width: float = 0.05,
        progress: bool = True, start_emissions: torch.Tensor | None = None, context: bool = False,
        backoff: float = 5.0, init: str = "frequency", screen: int = 0, keep: int = 1,
        stay: float | None = None, device: str | torch.device = "cpu", order: int = 2) -> DecipherResult:
    """EM from `restarts` starts; keeps the one with the highest likelihood.

    `init`: "frequency" starts (a phone emits the clusters of its frequency rank) or "lookup" starts (a random
    hard reading, `lookup_init`). `screen` > 0 runs every restart for that many iterations first and only the
    `keep` most likely on to `iterations`. `start_emissions` ((P, K), or (P, P+1, K) with `context`): one run
    from these instead. `context`: the next-phone-dependent model, each pair's emissions smoothed with `backoff`
    pseudo-counts. `stay`: every phone's self-loop probability, fixed (None: learnt by EM from 0.5). `device`: where
    the E-steps run (the chunks and the model move there; the result comes back on the CPU). `order`: 2, the moves
    follow the text's phone bigram; 3, its trigram (`asr_gan.lab.trigram_hmm`; not with `context`)."""
    if init not in ("frequency", "lookup"):
        raise ValueError(f"init {init!r}: expected frequency or lookup")
    if order not in (2, 3) or (order == 3 and context):
        raise ValueError(f"order {order}: expected 2, or 3 without the next-phone context")
    began = time.time()
    if order == 3:
        start, transitions = trigram_hmm.text_trigram(text, num_phones)
        chunk = min(chunk, trigram_hmm.MAX_CHUNK)
    elif context:
        start, transitions = context_hmm.text_bigram_with_end(text, num_phones)
    else:
        start, transitions = text_bigram(text, num_phones)
    phone_counts = np.bincount(np.concatenate(list(text)), minlength=num_phones).astype(np.float64)
    cluster_counts = np.bincount(np.concatenate(list(cluster_seqs)), minlength=num_clusters).astype(np.float64)
    device = torch.device(device)
    chunks = [tuple(t.to(device) for t in _pad([cluster_seqs[i] for i in rows]))
              for rows in _chunks(cluster_seqs, chunk)]
    rng = np.random.default_rng(seed)
    if start_emissions is not None:
        restarts = 1
    first = screen if 0 < screen < iterations and restarts > keep else iterations
    bar = tqdm(total=restarts * first + min(keep, restarts) * (iterations - first), desc="[decipher] EM",
               unit="it", disable=not progress, dynamic_ncols=True)

    def run_em(hmm: Hmm, steps: int, restart: int) -> tuple[Hmm, float, float]:
        """`steps` EM iterations: (the model, the log-likelihood before the first, and before the last update)."""
        log_likelihood = first_log_likelihood = -math.inf
        for step in range(steps):
            counts = torch.zeros(hmm.emissions.shape, dtype=torch.float64, device=device)
            moves = torch.zeros(2, num_phones, dtype=torch.float64, device=device)
            log_likelihood = 0.0
            for obs, mask in chunks:
                c, m, ll = (context_hmm.forward_backward(hmm, obs, mask) if isinstance(hmm, ContextHmm)
                            else trigram_hmm.forward_backward(hmm, obs, mask) if isinstance(hmm, TrigramHmm)
                            else expected_counts(hmm, obs, mask))
                counts += c
                moves += m
                log_likelihood += ll
            if step == 0:
                first_log_likelihood = log_likelihood
            if isinstance(hmm, ContextHmm):
                hmm = context_hmm.m_step(hmm, counts, moves, backoff)
            else:
                hmm.emissions = (counts + 1e-4) / (counts + 1e-4).sum(1, keepdim=True)
                hmm.stay = context_hmm.self_loops(moves)
            if stay is not None:
                hmm.stay = initial_stay(num_phones, stay).to(device)
            bar.update(1)
            bar.set_postfix(restart=restart, loglik=f"{log_likelihood:.1f}")
        return hmm, first_log_likelihood, log_likelihood

    # Only the models that can still be selected stay in memory: the `keep` most likely while screening, else one.
    held = min(keep, restarts) if first < iterations else 1
    runs: dict[int, Hmm] = {}
    likelihoods: list[float] = []
    start_likelihoods: list[float] = []
    for restart in range(restarts):
        if start_emissions is not None:
            emissions = start_emissions
        elif init == "lookup":
            emissions = lookup_init(phone_counts, num_clusters, rng)
        else:
            emissions = frequency_init(cluster_counts, phone_counts, width, rng if restart else None)
        hmm: Hmm
        if order == 3:
            hmm = TrigramHmm(start, transitions, initial_stay(num_phones, stay), emissions)
        elif context:
            if emissions.dim() == 2:  # a phone's start is the same whatever phone follows
                emissions = emissions[:, None, :].expand(-1, num_phones + 1, -1).clone()
            hmm = ContextHmm(start, transitions, initial_stay(num_phones, stay), emissions)
        else:
            hmm = PhoneHmm(start, transitions, initial_stay(num_phones, stay), emissions)
        hmm, first_ll, ll = run_em(hmm.to(device), first, restart)
        runs[restart] = hmm
        start_likelihoods.append(first_ll)
        likelihoods.append(ll)
        if len(runs) > held:  # the least likely goes (on a tie, the later restart, as a stable sort would)
            del runs[min(runs, key=lambda r: (likelihoods[r], -r))]
    if first < iterations:  # screened: only the most likely go on (EM never lowers a run's likelihood)
        for restart in sorted(runs, key=lambda r: -likelihoods[r]):
            runs[restart], _, likelihoods[restart] = run_em(runs[restart], iterations - first, restart)
    bar.close()
    selected = max(runs, key=lambda r: (likelihoods[r], -r))  # the first of the most likely
    return DecipherResult(runs[selected].to("cpu"), likelihoods, start_likelihoods, selected, time.time() - began)


def decode(hmm: Hmm, cluster_seqs: Sequence[np.ndarray], chunk: int = 256) -> list[np.ndarray]:
    """Viterbi phone id of every segment, in the input's order, computed where the model's tensors are."""
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(cluster_seqs)
    device = hmm.emissions.device
    if isinstance(hmm, TrigramHmm):
        chunk = min(chunk, trigram_hmm.MAX_CHUNK)
    for rows in _chunks(cluster_seqs, chunk):
        obs, mask = (t.to(device) for t in _pad([cluster_seqs[i] for i in rows]))
        path = (context_hmm.viterbi(hmm, obs, mask) if isinstance(hmm, ContextHmm)
                else trigram_hmm.viterbi(hmm, obs, mask) if isinstance(hmm, TrigramHmm) else viterbi(hmm, obs, mask))
        path = path.cpu()
        for j, i in enumerate(rows):
            out[i] = path[j, :len(cluster_seqs[i])].numpy()
    return out
