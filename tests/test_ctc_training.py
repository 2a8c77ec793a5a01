"""CTC phone model and training: shapes, greedy decoding, PER, and that training learns on tiny data."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from asr_gan.models.ctc_model import CTCPhoneModel
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import CTCTrainConfig, ctc_feasible, load_ctc_checkpoint, train_ctc
from asr_gan.train.ctc_data import length_batches, pair_features_with_labels, read_phone_labels, write_phone_labels
from asr_gan.train.ctc_outputs import ctc_greedy_decode, evaluate_per, phone_error_rate

torch.set_num_threads(1)

PHONES = ["AA", "B", "D", "IY", "K", "S", "<SIL>"]


def synthetic_corpus(num_utts: int, seed: int, dim: int = 8, noise: float = 0.35):
    """Utterances of random phones, each phone 2-4 frames of its own mean vector plus noise.

    Returns (utt_ids, features [(T, dim)], labels {utt: [phones]}).
    """
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(size=(len(PHONES), dim)) * 1.5  # same phones in every split
    utt_ids, features, labels = [], [], {}
    for n in range(num_utts):
        count = int(rng.integers(3, 8))
        phones = [int(p) for p in rng.integers(0, len(PHONES) - 1, size=count)]
        phones = ["<SIL>"] + [PHONES[p] for p in phones] + ["<SIL>"]
        frames = [means[PHONES.index(p)] + noise * rng.normal(size=(int(rng.integers(2, 5)), dim)) for p in phones]
        utt_ids.append(f"utt{seed}_{n:03d}")
        features.append(np.concatenate(frames).astype(np.float32))
        labels[utt_ids[-1]] = phones
    return utt_ids, features, labels


def test_ctc_model_outputs_one_more_than_phones_with_blank_last():
    for kind in ("bilstm", "conformer"):
        kwargs = {"hidden_dim": 8} if kind == "bilstm" else {"model_dim": 16, "ffn_dim": 16, "num_layers": 1,
                                                              "num_heads": 2, "kernel_size": 3}
        model = CTCPhoneModel(kind, 5, 7, kwargs)
        x = torch.randn(2, 11, 5)
        mask = torch.zeros(2, 11, dtype=torch.bool)
        mask[1, 6:] = True
        logits, out_mask = model(x, mask)
        assert logits.shape == (2, 11, 8)
        assert model.blank == 7
        assert torch.equal(out_mask, mask)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    blank = 3
    path = [0, 0, 3, 0, 1, 1, 3, 3, 2, 2, 2]
    logits = torch.nn.functional.one_hot(torch.tensor(path), 4).float()
    assert ctc_greedy_decode(logits, len(path), blank) == [0, 0, 1, 2]
    assert ctc_greedy_decode(logits, 4, blank) == [0, 0]  # frames past the length are ignored


def test_per_ignores_silence_and_counts_edits_over_reference_length():
    refs = [["<SIL>", "AA", "B", "D", "<SIL>"], ["K", "S"]]
    hyps = [["AA", "D", "D", "<SIL>"], []]  # one substitution + 2 deletions over 5 reference phones
    assert phone_error_rate(refs, hyps) == pytest.approx(3 / 5)
    assert phone_error_rate(refs, refs) == 0.0


def test_ctc_feasibility_counts_blanks_between_repeats():
    assert ctc_feasible([1, 2, 3], 3)
    assert not ctc_feasible([1, 1, 2], 3)
    assert ctc_feasible([1, 1, 2], 4)


def test_length_batches_respect_frame_budget_and_cover_everything():
    lengths = [5, 50, 7, 30, 8, 100]
    batches = length_batches(lengths, 60, shuffle=True, rng=random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 60


def test_labels_round_trip_and_pairing_skips_missing_and_unknown(tmp_path):
    inventory = PhoneInventory(PHONES)
    labels = {"a": ["AA", "B"], "b": ["ZZ"], "d": ["K"]}
    write_phone_labels(tmp_path / "x.phn", labels)
    assert read_phone_labels(tmp_path / "x.phn") == labels
    feats = [np.zeros((3, 2), np.float32)] * 3
    data, skipped = pair_features_with_labels(["a", "b", "c"], feats, labels, inventory)
    assert data.utt_ids == ["a"] and data.labels == [[0, 1]]
    assert skipped == {"no_label": 1, "unknown_phone": 1, "empty": 0}


def test_ctc_training_learns_phones_far_below_chance(tmp_path):
    inventory = PhoneInventory(PHONES)
    ids, feats, labels = synthetic_corpus(48, seed=0)
    vids, vfeats, vlabels = synthetic_corpus(16, seed=1)
    train, _ = pair_features_with_labels(ids, feats, labels, inventory)
    valid, _ = pair_features_with_labels(vids, vfeats, vlabels, inventory)
    config = CTCTrainConfig(model="bilstm", encoder_kwargs={"hidden_dim": 32, "num_layers": 1}, epochs=25,
                            lr=1e-2, batch_frames=400, seed=0, device="cpu")
    torch.manual_seed(0)  # the untrained baseline must not depend on what earlier tests drew
    untrained = CTCPhoneModel("bilstm", 8, len(PHONES), {"hidden_dim": 32, "num_layers": 1})
    chance_per = evaluate_per(untrained, valid, inventory, torch.device("cpu"))
    result = train_ctc(config, train, inventory, valid, out=tmp_path / "run", progress=False)
    assert chance_per > 0.8
    assert result.best_valid_per < 0.2
    # the saved best checkpoint reproduces the reported PER
    model, inv, checkpoint = load_ctc_checkpoint(tmp_path / "run" / "checkpoint_best.pt")
    assert inv.symbols == PHONES
    assert evaluate_per(model, valid, inv, torch.device("cpu")) == pytest.approx(result.best_valid_per, abs=1e-4)
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 25


def test_blank_penalty_lets_a_phone_beat_a_slightly_likelier_blank():
    logits = torch.tensor([[0.0, 1.0, 1.2], [0.0, 0.0, 3.0]])  # blank = 2 wins both frames by default
    assert ctc_greedy_decode(logits, 2, blank=2) == []
    assert ctc_greedy_decode(logits, 2, blank=2, blank_penalty=0.5) == [1]
