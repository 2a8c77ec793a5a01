"""Self-training: a CTC student trained on noisy pseudo-labels beats the labels it learned from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr_gan.decode.self_train import (
    SelfTrainConfig,
    parse_eval,
    report_markdown,
    self_train,
    split_holdout,
)
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import CTCTrainConfig
from asr_gan.train.ctc_data import pair_features_with_labels

torch.set_num_threads(1)

PHONES = ["AA", "B", "D", "IY", "K", "S", "<SIL>"]


def synthetic_frames(num_utts: int, seed: int, dim: int = 8, noise: float = 0.35):
    """Frame-level features: each phone lasts 2-4 frames of its own mean vector plus noise.

    Returns (utt_ids, [(T, dim) arrays], {utt: reference phones}).
    """
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(size=(len(PHONES), dim)) * 1.5
    ids, feats, refs = [], [], {}
    for n in range(num_utts):
        phones = ["<SIL>", *(PHONES[int(p)] for p in rng.integers(0, len(PHONES) - 1, size=int(rng.integers(3, 8)))),
                  "<SIL>"]
        frames = [means[PHONES.index(p)] + noise * rng.normal(size=(int(rng.integers(2, 5)), dim)) for p in phones]
        ids.append(f"u{seed}_{n:03d}")
        feats.append(np.concatenate(frames).astype(np.float32))
        refs[ids[-1]] = phones
    return ids, feats, refs


def noisy_labeller(refs: dict[str, list[str]], error_rate: float, seed: int) -> dict[str, list[str]]:
    """A deliberately bad labeller: each non-silence phone is replaced by another at random with `error_rate`,
    independently per utterance (the kind of unsystematic error a student can average out)."""
    rng = np.random.default_rng(seed)
    speech = PHONES[:-1]
    noisy = {}
    for utt, phones in refs.items():
        out = []
        for p in phones:
            if p != "<SIL>" and rng.random() < error_rate:
                p = speech[(speech.index(p) + int(rng.integers(1, len(speech)))) % len(speech)]
            out.append(p)
        noisy[utt] = out
    return noisy


def test_holdout_split_is_disjoint_and_covers_the_set():
    inventory = PhoneInventory(PHONES)
    ids, feats, refs = synthetic_frames(10, seed=3)
    data, _ = pair_features_with_labels(ids, feats, refs, inventory)
    fit, held = split_holdout(data, 0.2, seed=0)
    assert len(held) == 2 and len(fit) == 8
    assert sorted(fit.utt_ids + held.utt_ids) == sorted(ids)
    assert split_holdout(data, 0.0, seed=0)[1] is None


def test_eval_argument_names_features_and_references():
    assert parse_eval(["dev=a/b:c.phn"]) == {"dev": ("a/b", "c.phn")}
    with pytest.raises(ValueError, match="name=FEATURES_DIR"):
        parse_eval(["dev"])


def test_self_training_round_beats_its_noisy_pseudo_labels(tmp_path):
    inventory = PhoneInventory(PHONES)
    ids, feats, refs = synthetic_frames(256, seed=0, noise=0.2)
    dev_ids, dev_feats, dev_refs = synthetic_frames(48, seed=1, noise=0.2)
    dev, _ = pair_features_with_labels(dev_ids, dev_feats, dev_refs, inventory)
    pseudo = noisy_labeller(refs, error_rate=0.35, seed=0)
    config = SelfTrainConfig(out=str(tmp_path), rounds=2, holdout_share=0.1,
                             ctc=CTCTrainConfig(model="bilstm", encoder_kwargs={"hidden_dim": 32, "num_layers": 1},
                                                epochs=12, lr=1e-2, batch_frames=300, seed=0, device="cpu"))
    reports = self_train(config, inventory, ids, feats, pseudo, {"dev": dev}, refs, progress=False)
    initial_per = reports[0].train_label_per
    assert initial_per == pytest.approx(0.35, abs=0.07)  # the labeller is as bad as intended
    first, second = reports[1], reports[2]
    # the student, trained only on the noisy labels, is clearly better than them on unseen data and on the
    # training audio it relabels (measured: 34% labels -> 21% dev, 18% relabelled train; round 2: 18% dev)
    assert first.eval_per["dev"] < 0.7 * initial_per
    assert first.train_label_per < 0.7 * initial_per
    assert second.eval_per["dev"] < 0.7 * initial_per
    assert first.blank_penalty > 0  # without one, greedy decoding of the noisy-label model deletes phones
    assert (tmp_path / "round2" / "train_labels.phn").read_text().count("\n") == 256
    table = report_markdown(reports, ["dev"])
    assert table.splitlines()[2].startswith("| 0 (GAN labels) | - |")


def test_a_round_whose_student_fails_to_learn_its_labels_is_rejected_and_stops_self_training(tmp_path, monkeypatch,
                                                                                            capsys):
    """Held-out disagreement 10% in round 1, 80% in round 2: round 2 is rejected, round 3 never runs."""
    import asr_gan.decode.self_train as module

    inventory = PhoneInventory(PHONES)
    ids, feats, refs = synthetic_frames(20, seed=0)
    disagreements = iter([0.1, 0.8, 0.1])
    monkeypatch.setattr(module, "choose_blank_penalty", lambda *args: (0.0, next(disagreements)))
    config = SelfTrainConfig(out=str(tmp_path), rounds=3, holdout_share=0.2,
                             ctc=CTCTrainConfig(model="bilstm", encoder_kwargs={"hidden_dim": 8, "num_layers": 1},
                                                epochs=1, batch_frames=300, seed=0, device="cpu"))
    reports = self_train(config, inventory, ids, feats, refs, {}, progress=False)
    assert [(r.round, r.accepted) for r in reports] == [(0, True), (1, True), (2, False)]
    assert module.final_round(reports) == 1
    err = capsys.readouterr().err
    assert "[self-train r2] rejected" in err and "80.0%" in err and "round 1 is final" in err, err
    table = report_markdown(reports, [])
    assert "no (student failed)" in table and table.rstrip().endswith("Final round: 1")
    assert not (tmp_path / "round3").exists()


def test_disagreement_rise_needs_both_rounds_and_a_rise_past_the_limit():
    from asr_gan.decode.self_train import disagreement_rose

    assert disagreement_rose(0.16, 0.78, 0.25) and not disagreement_rose(0.16, 0.40, 0.25)
    assert not disagreement_rose(None, 0.9, 0.25) and not disagreement_rose(0.1, None, 0.25)
