"""EODM: expected N-gram counts of the merged outputs, the text's N-grams, and training that learns the toy task."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr_gan.scoring.chance import lowest_chance
from asr_gan.train.checkpoint import load_generator, read_checkpoint
from asr_gan.train.ctc_data import read_phone_labels
from asr_gan.train.ctc_outputs import per_on_common
from asr_gan.train.data import SequenceBank, load_feature_sequences
from asr_gan.train.eodm import EodmConfig, EodmTrainer, main
from asr_gan.train.eodm_counts import expected_ngram_counts, expected_ngram_total, text_ngram_targets
from asr_gan.train.selection import greedy_phone_ids
from tests.fixtures.toy_phones import make_toy_task

# 250 updates, annealed over all of them: 0.0% valid PER from update 150 on, seeds 1 and 2 alike (docs/eodm.md).
TOY_SETTINGS = {"steps": 250, "anneal_steps": 250, "valid_interval": 50, "log_interval": 25}


def merged(sequence: list[int]) -> list[int]:
    return [p for i, p in enumerate(sequence) if i == 0 or p != sequence[i - 1]]


def ngram_counts(sequence: list[int], order: int) -> Counter:
    return Counter(tuple(sequence[i:i + order]) for i in range(len(sequence) - order + 1))


def all_ngrams(phones: int, order: int) -> torch.Tensor:
    """Every N-gram of `order` over `phones` with no two equal neighbours, (K, order)."""
    grams = [g for g in itertools.product(range(phones), repeat=order) if all(a != b for a, b in zip(g, g[1:]))]
    return torch.tensor(grams, dtype=torch.long)


def test_expected_counts_of_one_hot_outputs_are_the_counts_of_the_merged_sequences():
    sequences = [[0, 0, 1, 2, 2, 2, 0, 1, 3, 3], [2, 1, 1, 0]]  # the second padded by 6 positions
    probs = torch.zeros(2, 10, 4)
    for b, sequence in enumerate(sequences):
        probs[b, torch.arange(len(sequence)), torch.tensor(sequence)] = 1.0
    mask = torch.arange(10)[None, :] >= torch.tensor([10, 4])[:, None]
    for order in (1, 2, 3, 4):
        ngrams = all_ngrams(4, order)
        counts = expected_ngram_counts(probs, ngrams)
        truth = sum((ngram_counts(merged(s), order) for s in sequences), Counter())
        assert {tuple(g.tolist()): round(c.item(), 6) for g, c in zip(ngrams, counts) if c > 0} == truth, order
        assert expected_ngram_total(probs, mask, order).item() == pytest.approx(sum(truth.values()))


def test_expected_counts_of_soft_outputs_average_every_sequence_they_can_sample():
    torch.manual_seed(0)
    length, phones = 5, 3
    probs = torch.randn(1, length, phones).mul(2).softmax(-1)
    mask = torch.zeros(1, length, dtype=torch.bool)
    for order in (1, 2, 3):
        ngrams = all_ngrams(phones, order)
        truth = torch.zeros(len(ngrams), dtype=torch.float64)
        total = 0.0
        for sequence in itertools.product(range(phones), repeat=length):
            weight = float(torch.prod(probs[0, torch.arange(length), torch.tensor(sequence)]))
            counts = ngram_counts(merged(list(sequence)), order)
            truth += weight * torch.tensor([counts[tuple(g.tolist())] for g in ngrams], dtype=torch.float64)
            total += weight * sum(counts.values())
        assert torch.allclose(expected_ngram_counts(probs, ngrams).double(), truth, atol=1e-5), order
        if order <= 2:  # exact while every output has at least order - 1 runs
            assert expected_ngram_total(probs, mask, order).item() == pytest.approx(total, abs=1e-5)


def test_text_ngrams_merge_repeats_stay_inside_sentences_and_keep_the_most_frequent():
    sentences = [np.array([0, 0, 1, 2]), np.array([2, 1]), np.array([1, 1, 1])]  # merged: 0 1 2 | 2 1 | 1
    unigrams, bigrams = text_ngram_targets(sentences, num_phones=3, max_order=2, top_k=2)
    assert unigrams.ngrams.tolist() == [[1], [2]] and unigrams.kept_share == pytest.approx(5 / 6)
    assert unigrams.probs.tolist() == pytest.approx([0.6, 0.4])
    assert bigrams.ngrams.tolist() == [[0, 1], [1, 2]] and bigrams.kept_share == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="4 phones"):  # no merged sentence is that long
        text_ngram_targets(sentences, num_phones=3, max_order=4, top_k=10)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, Path]:
    """The toy language with 6 phones and half the audio: the 10-phone task learns too, but in 400 updates."""
    return make_toy_task(tmp_path_factory.mktemp("toy"), num_phones=6, num_audio=150, num_valid=40)


def toy_config(toy: dict[str, Path], **overrides) -> EodmConfig:
    return EodmConfig(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]),
                      phone_lm=str(toy["phone_lm"]), valid_features=str(toy["valid"]),
                      valid_labels=str(toy["valid_labels"]), device="cpu", progress=False, **overrides)


def test_eodm_learns_the_toy_task_far_below_chance_and_its_checkpoint_decodes(toy, tmp_path):
    """Unsupervised: no reference reaches the learner; the label-free choice must read the audio."""
    refs = read_phone_labels(toy["valid_labels"])
    text = [line.split() for line in toy["text"].read_text().splitlines()]
    chance = lowest_chance(refs, text)[0]
    trainer = EodmTrainer(toy_config(toy, **TOY_SETTINGS), tmp_path / "run")
    untrained = trainer.validate()["valid_per"]
    summary = trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    pers = {r["step"]: r["valid_per"] for r in records if "valid_per" in r}
    assert untrained > 0.5 and chance > 0.5 and pers[summary["best_step"]] < 0.15, (untrained, chance, pers)
    # The checkpoint is the GAN's format: load_generator reads it and its greedy output scores as logged.
    generator, inventory = load_generator(tmp_path / "run" / "checkpoint_best.pt")
    assert inventory.symbols == (toy["phones"]).read_text().split()
    valid, ids = load_feature_sequences(str(toy["valid"]))
    outputs = greedy_phone_ids(generator, SequenceBank(valid, torch.device("cpu")))
    per, _ = per_on_common(refs, {u: inventory.decode(o) for u, o in zip(ids, outputs)}, inventory.silence)
    assert per == pytest.approx(pers[summary["best_step"]], abs=1e-4)
    assert read_checkpoint(tmp_path / "run" / "checkpoint_best.pt")["step"] == summary["best_step"]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(toy, tmp_path):
    settings = {"valid_interval": 3, "log_interval": 3, "chunk_positions": 1500, "seed": 4, "batch_utterances": 200}
    straight = EodmTrainer(toy_config(toy, steps=6, **settings), tmp_path / "straight")
    straight.train()
    EodmTrainer(toy_config(toy, steps=3, **settings), tmp_path / "resumed").train()
    resumed = EodmTrainer(toy_config(toy, steps=6, **settings), tmp_path / "resumed")
    resumed.train()
    for a, b in zip(straight.generator.parameters(), resumed.generator.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert (tmp_path / "straight" / "metrics.jsonl").read_text() == (tmp_path / "resumed" / "metrics.jsonl").read_text()


def test_chunked_updates_follow_the_full_corpus_gradient(toy, tmp_path):
    trainers = []
    for name, positions in (("whole", 100_000), ("chunked", 500)):
        config = toy_config(toy, chunk_positions=positions, smoothness=0.1, entropy=0.1)
        config.generator.input_dropout = 0.0  # chunks of other sizes would draw other dropout masks
        trainer = EodmTrainer(config, tmp_path / name)
        trainer.optimizer = torch.optim.SGD(trainer.generator.parameters(), lr=0.0)  # keeps the gradients only
        trainer.update()
        trainers.append(trainer)
    whole, chunked = trainers
    assert len(whole._chunks()) == 1 and len(chunked._chunks()) > 3
    for a, b in zip(whole.generator.parameters(), chunked.generator.parameters()):
        assert a.grad.abs().max() > 0 and torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-6)


def test_cli_reads_a_gan_config_and_names_a_missing_file(toy, tmp_path, capsys):
    gan = {"features": str(toy["train"]), "text": str(toy["text"]), "phones": str(toy["phones"]),
           "phone_lm": str(toy["phone_lm"]), "valid_features": str(toy["valid"]), "generator": {"kernel_size": 4}}
    (tmp_path / "gan.yaml").write_text(yaml.safe_dump(gan))
    assert main(["--gan-config", str(tmp_path / "gan.yaml"), "--out", str(tmp_path / "run"), "--steps", "2",
                 "--valid-interval", "2", "--order", "2", "--no-progress", "--set", "generator.hidden_layers=1"]) == 0
    state = read_checkpoint(tmp_path / "run" / "checkpoint_last.pt")
    assert state["config"]["features"] == str(toy["train"]) and state["config"]["max_order"] == 2
    # EODM's own generator (kernel 1), not the GAN's: with context it can write text that ignores the audio
    assert state["generator_kwargs"]["kernel_size"] == 1 and state["generator_kwargs"]["hidden_layers"] == 1
    assert main(["--gan-config", str(tmp_path / "gan.yaml"), "--out", str(tmp_path / "bad"),
                 "--text", str(tmp_path / "no_such.phn")]) == 1
    assert "no_such.phn: phone text not found" in capsys.readouterr().err
