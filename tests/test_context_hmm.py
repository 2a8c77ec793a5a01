"""The next-phone-dependent decipherment HMM (asr_gan.lab.context_hmm) against enumerating every state path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr_gan.lab import context_hmm
from asr_gan.lab.phone_hmm import _pad
from tests.fixtures.enumerated_hmm import enumerate_paths

PHONES, CLUSTERS = 2, 3
END = PHONES


def tiny_hmm(seed: int = 5) -> context_hmm.ContextHmm:
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(PHONES, generator=g, dtype=torch.float64)
    bigram = torch.rand(PHONES, PHONES + 1, generator=g, dtype=torch.float64)
    emissions = torch.rand(PHONES, PHONES + 1, CLUSTERS, generator=g, dtype=torch.float64)
    return context_hmm.ContextHmm(start / start.sum(), bigram / bigram.sum(1, keepdim=True),
                                  torch.tensor([0.3, 0.6], dtype=torch.float64),
                                  emissions / emissions.sum(2, keepdim=True))


def step_parts(hmm: context_hmm.ContextHmm, before: tuple[int, int], after: tuple[int, int]) -> tuple[float, float]:
    """(self-loop, move) parts of the step before -> after: (p, q) stays with stay_p, or moves on to (q, r) with
    (1 - stay_p) bigram(q, r). (p, p) -> (p, p) is both: the text may repeat a phone."""
    (p0, q0), (p1, q1) = before, after
    stay = float(hmm.stay[p0]) if before == after else 0.0
    move = float((1 - hmm.stay[p0]) * hmm.bigram[q0, q1]) if q0 != END and p1 == q0 else 0.0
    return stay, move


def path_probability(hmm: context_hmm.ContextHmm, states: tuple[tuple[int, int], ...], symbols: list[int]) -> float:
    """P(path, symbols); the path must end in a state (p, end)."""
    (p, q) = states[0]
    prob = float(hmm.start[p] * hmm.bigram[p, q] * hmm.emissions[p, q, symbols[0]])
    for before, after, symbol in zip(states, states[1:], symbols[1:]):
        prob *= sum(step_parts(hmm, before, after)) * float(hmm.emissions[after[0], after[1], symbol])
    return prob if states[-1][1] == END else 0.0


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_forward_backward_and_viterbi_agree_with_enumerating_every_path(seed):
    hmm = tiny_hmm(seed)
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(CLUSTERS, size=4), rng.integers(CLUSTERS, size=2)]  # the second is padded
    obs, mask = _pad(sequences)
    counts, moves, log_likelihood = context_hmm.forward_backward(hmm, obs, mask)
    best_paths = context_hmm.viterbi(hmm, obs, mask)
    pairs = [(p, q) for p in range(PHONES) for q in range(PHONES + 1)]
    expected = enumerate_paths(sequences, pairs, lambda s, x: path_probability(hmm, s, x),
                               lambda before, after: step_parts(hmm, before, after), count_index=lambda s: s,
                               phone_of=lambda s: s[0], counts_shape=(PHONES, PHONES + 1, CLUSTERS), phones=PHONES)
    expected.check(counts, moves, log_likelihood, best_paths, phone_of=lambda s: s[0])


def test_text_bigram_with_end_counts_how_sentences_end():
    start, bigram = context_hmm.text_bigram_with_end([np.array([0, 1]), np.array([0, 1, 1])], 2, smoothing=0.0)
    assert start.tolist() == [1.0, 0.0]
    assert bigram[0].tolist() == [0.0, 1.0, 0.0]  # 0 is always followed by 1
    assert bigram[1].tolist() == pytest.approx([0.0, 1 / 3, 2 / 3])  # 1 -> 1 once, 1 -> end twice


def test_m_step_smooths_a_rare_pair_toward_its_phone():
    hmm = tiny_hmm()
    counts = torch.zeros(PHONES, PHONES + 1, CLUSTERS, dtype=torch.float64)
    counts[0, 0] = torch.tensor([90.0, 10.0, 0.0])
    counts[0, 1] = torch.tensor([0.0, 0.0, 1.0])  # one segment only
    new = context_hmm.m_step(hmm, counts, torch.ones(2, PHONES, dtype=torch.float64), backoff=5.0)
    assert torch.allclose(new.emissions.sum(2), torch.ones(PHONES, PHONES + 1, dtype=torch.float64))
    assert new.emissions[0, 1, 0] > 0.5  # pulled toward phone 0's pooled emissions, mostly cluster 0
    assert new.emissions[0, 0, 0] > 0.85
    assert new.stay.tolist() == pytest.approx([0.5, 0.5])
