"""The phone-trigram decipherment HMM (asr_gan.lab.trigram_hmm) against enumerating every state path, against
the plain bigram HMM it must reduce to, and inside the decipherment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr_gan.lab import decipher, phone_hmm, trigram_hmm
from asr_gan.lab.phone_hmm import _pad
from tests.fixtures.enumerated_hmm import enumerate_paths
from tests.fixtures.toy_phones import make_toy_task

PHONES, CLUSTERS = 2, 3
START = PHONES  # the "no phone before" row of a pair state


def tiny_hmm(seed: int) -> trigram_hmm.TrigramHmm:
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(PHONES, generator=g, dtype=torch.float64)
    trigram = torch.rand(PHONES + 1, PHONES, PHONES, generator=g, dtype=torch.float64)
    emissions = torch.rand(PHONES, CLUSTERS, generator=g, dtype=torch.float64)
    return trigram_hmm.TrigramHmm(start / start.sum(), trigram / trigram.sum(2, keepdim=True),
                                  torch.tensor([0.3, 0.6], dtype=torch.float64),
                                  emissions / emissions.sum(1, keepdim=True))


def step_parts(hmm: trigram_hmm.TrigramHmm, before: tuple[int, int], after: tuple[int, int]) -> tuple[float, float]:
    """(self-loop, move) parts of the step before -> after: (o, p) stays with stay_p, or moves on to (p, q) with
    (1 - stay_p) trigram(q | o, p). (p, p) -> (p, p) is both: the text may repeat a phone."""
    (o0, p0), (o1, p1) = before, after
    stay = float(hmm.stay[p0]) if before == after else 0.0
    move = float((1 - hmm.stay[p0]) * hmm.trigram[o0, p0, p1]) if o1 == p0 else 0.0
    return stay, move


def path_probability(hmm: trigram_hmm.TrigramHmm, states: tuple[tuple[int, int], ...], symbols: list[int]) -> float:
    o, p = states[0]
    if o != START:
        return 0.0
    prob = float(hmm.start[p] * hmm.emissions[p, symbols[0]])
    for before, after, symbol in zip(states, states[1:], symbols[1:]):
        prob *= sum(step_parts(hmm, before, after)) * float(hmm.emissions[after[1], symbol])
    return prob


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_forward_backward_and_viterbi_agree_with_enumerating_every_path(seed):
    hmm = tiny_hmm(seed)
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(CLUSTERS, size=4), rng.integers(CLUSTERS, size=2)]  # the second is padded
    obs, mask = _pad(sequences)
    counts, moves, log_likelihood = trigram_hmm.forward_backward(hmm, obs, mask)
    best_paths = trigram_hmm.viterbi(hmm, obs, mask)
    pairs = [(o, p) for o in range(PHONES + 1) for p in range(PHONES)]
    expected = enumerate_paths(sequences, pairs, lambda s, x: path_probability(hmm, s, x),
                               lambda before, after: step_parts(hmm, before, after), count_index=lambda s: (s[1],),
                               phone_of=lambda s: s[1], counts_shape=(PHONES, CLUSTERS), phones=PHONES)
    expected.check(counts, moves, log_likelihood, best_paths, phone_of=lambda s: s[1])


def test_a_trigram_that_ignores_the_phone_before_gives_the_plain_bigram_models_posteriors():
    g = torch.Generator().manual_seed(2)
    phones, clusters = 4, 5
    start = torch.rand(phones, generator=g, dtype=torch.float64)
    bigram = torch.rand(phones, phones, generator=g, dtype=torch.float64)
    emissions = torch.rand(phones, clusters, generator=g, dtype=torch.float64)
    stay = torch.tensor([0.1, 0.4, 0.6, 0.8], dtype=torch.float64)
    plain = phone_hmm.PhoneHmm(start / start.sum(), bigram / bigram.sum(1, keepdim=True), stay,
                               emissions / emissions.sum(1, keepdim=True))
    trigram = trigram_hmm.TrigramHmm(plain.start, plain.bigram[None].expand(phones + 1, -1, -1).clone(), stay,
                                     plain.emissions)
    rng = np.random.default_rng(0)
    obs, mask = _pad([rng.integers(clusters, size=n) for n in (9, 3, 6)])
    ours, theirs = trigram_hmm.forward_backward(trigram, obs, mask), phone_hmm.expected_counts(plain, obs, mask)
    assert torch.allclose(ours[0], theirs[0], atol=1e-9)
    assert torch.allclose(ours[1], theirs[1], atol=1e-9)
    assert ours[2] == pytest.approx(theirs[2], rel=1e-9)
    # Viterbi need not agree: a phone repeated within one state path splits into a self-loop of (o, p) and a move
    # to (p, p), which the plain model sums into one step; the enumeration test above checks it instead.


def test_the_text_trigram_trusts_frequent_contexts_and_backs_off_to_the_bigram_elsewhere():
    # phone 0 is followed by 1 after a 2 and by 2 after a 1, many times; phone 2 is never seen after a 0
    text = [np.array([2, 0, 1, 0, 2])] * 50
    start, trigram = trigram_hmm.text_trigram(text, 3)
    assert torch.allclose(trigram.sum(2), torch.ones(4, 3, dtype=torch.float64))
    assert start.argmax() == 2
    assert trigram[2, 0, 1] > 0.95 and trigram[1, 0, 2] > 0.95  # 50 sightings, one next phone each
    assert trigram[3, 2, 0] > 0.95  # the sentence start: 2 then 0
    _, bigram = phone_hmm.text_bigram(text, 3, smoothing=0.1)
    assert torch.allclose(trigram[0, 2], bigram[2])  # (0, 2) never seen: the bigram's row


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_task(tmp_path_factory.mktemp("toy"))


def test_the_trigram_decipherment_labels_the_toy_audio_and_says_so(toy, tmp_path):
    report = decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "tri", clusters=11,
                          restarts=2, iterations=50, labels=str(toy["train_labels"]), progress=False, order=3)
    assert report["order"] == 3 and report["per"] < 0.1, report
    with np.load(tmp_path / "tri" / "model.npz") as model:
        assert model["trigram"].shape == (len(model["start"]) + 1, len(model["start"]), len(model["start"]))
        assert int(model["order"]) == 3 and "bigram" not in model.files


def test_decipher_refuses_a_trigram_with_the_next_phone_context_or_another_order(toy, tmp_path, capsys):
    common = ["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones", str(toy["phones"]),
              "--out", str(tmp_path / "x"), "--no-progress"]
    assert decipher.main(common + ["--order", "3", "--context", "next"]) == 1
    assert "order 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        decipher.main(common + ["--order", "4"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_trigram_e_step_and_viterbi_give_the_cpus_answer_on_cuda():
    hmm = tiny_hmm(5)
    rng = np.random.default_rng(1)
    obs, mask = _pad([rng.integers(CLUSTERS, size=n) for n in (7, 4, 9)])
    cpu = trigram_hmm.forward_backward(hmm, obs, mask)
    gpu = trigram_hmm.forward_backward(hmm.to("cuda"), obs.cuda(), mask.cuda())
    assert torch.allclose(gpu[0].cpu(), cpu[0], rtol=1e-9) and torch.allclose(gpu[1].cpu(), cpu[1], rtol=1e-9)
    assert gpu[2] == pytest.approx(cpu[2], rel=1e-9)
    assert torch.equal(trigram_hmm.viterbi(hmm.to("cuda"), obs.cuda(), mask.cuda()).cpu(),
                       trigram_hmm.viterbi(hmm, obs, mask))
