"""The GAN learner: networks, run merging, losses, config, and training that learns, resumes and scales out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr_gan.features.storage import FeatureSet
from asr_gan.models import Discriminator, Generator, ReverseGenerator
from asr_gan.train import losses
from asr_gan.train.checkpoint import load_generator, read_checkpoint
from asr_gan.train.config import config_from_dict, config_to_dict, load_config
from asr_gan.train.gan import GanTrainer, TrainingDiverged, train_gan
from asr_gan.train.merge import merge_runs
from tests.fixtures.toy_phones import make_toy_task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, Path]:
    return make_toy_task(tmp_path_factory.mktemp("toy"))


def toy_config(toy: dict[str, Path], **overrides):
    values = {"features": str(toy["train"]), "text": str(toy["text"]), "phones": str(toy["phones"]),
              "phone_lm": str(toy["phone_lm"]), "valid_features": str(toy["valid"]),
              "valid_labels": str(toy["valid_labels"]), "batch_size": 32, "valid_interval": 100,
              "log_interval": 50, "tensorboard": False, "progress": False, "device": "cpu",
              "discriminator": {"hidden_dim": 64}, "generator": {"kernel_size": 3}}
    values.update(overrides)
    return config_from_dict(values)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]


def test_merge_runs_averages_each_run_at_evaluation_and_samples_one_position_while_training():
    # argmax per position: 0 0 1 1 1 0 | pad pad
    probs = torch.tensor([[[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.1, 0.9], [0.6, 0.4],
                           [0.5, 0.5], [0.5, 0.5]]])
    mask = torch.tensor([[False] * 6 + [True, True]])
    merged, merged_mask = merge_runs(probs, mask, sample=False)
    assert merged_mask.tolist() == [[False, False, False]]
    assert torch.allclose(merged[0], torch.tensor([[0.8, 0.2], [0.7 / 3, 2.3 / 3], [0.6, 0.4]]))
    sampled, _ = merge_runs(probs, mask, sample=True)
    runs = [probs[0, 0:2], probs[0, 2:5], probs[0, 5:6]]
    for row, run in zip(sampled[0], runs):
        assert any(torch.equal(row, candidate) for candidate in run)  # one real position, not a mix


def test_merge_runs_pads_shorter_utterances_and_keeps_gradients():
    probs = torch.rand(2, 5, 3, requires_grad=True)
    mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    merged, merged_mask = merge_runs(probs.softmax(-1), mask, sample=True)
    assert merged.shape[0] == 2 and (~merged_mask[1]).sum() <= 2
    merged.sum().backward()
    assert probs.grad is not None and probs.grad[1, 2:].abs().sum() == 0  # padding gets no gradient


def test_strided_generator_emits_one_position_per_stride_and_masks_padding():
    generator = Generator(8, 5, kernel_size=9, stride=3, batch_norm=True, residual_linear=True, hidden_layers=1)
    x = torch.randn(2, 10, 8)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[1, 4:] = True
    logits, out_mask = generator(x, mask)
    assert logits.shape == (2, 4, 5)
    assert out_mask.tolist() == [[False] * 4, [False, False, True, True]]
    reverse = ReverseGenerator(5, 8, upsample=3)
    features, features_mask = reverse(logits.softmax(-1), out_mask)
    assert features.shape == (2, 12, 8) and features_mask[1].sum() == 6


def test_generator_output_at_a_position_ignores_padding_beyond_the_utterance():
    generator = Generator(4, 3, kernel_size=4, hidden_layers=2).eval()
    x = torch.randn(1, 6, 4)
    short, _ = generator(x[:, :4], torch.zeros(1, 4, dtype=torch.bool))
    padded = torch.cat([x[:, :4], 100 * torch.ones(1, 2, 4)], dim=1)
    mask = torch.tensor([[False] * 4 + [True] * 2])
    long, _ = generator(padded, mask)
    assert torch.allclose(short, long[:, :4], atol=1e-5)


def test_discriminator_scores_are_causal_and_ignore_padding():
    disc = Discriminator(3, hidden_dim=8, kernel_size=3)
    x = torch.rand(1, 5, 3)
    mask = torch.tensor([[False, False, False, True, True]])
    noisy = x.clone()
    noisy[:, 3:] = 50.0
    assert torch.allclose(disc(x, mask), disc(noisy, mask))


def pad_wider(x: torch.Tensor, mask: torch.Tensor, extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch as a CUDA graph sees it: `extra` more padding positions (filled with zeros, as gathered)."""
    wide = torch.cat([x, x.new_zeros(x.shape[0], extra, *x.shape[2:])], dim=1)
    return wide, torch.cat([mask, mask.new_ones(mask.shape[0], extra)], dim=1)


def test_losses_of_a_batch_padded_wider_for_cuda_graphs_are_the_same():
    torch.manual_seed(0)
    lengths = torch.tensor([7, 4, 2])
    mask = torch.arange(7)[None, :] >= lengths[:, None]
    logits = torch.randn(3, 7, 5).masked_fill(mask.unsqueeze(-1), 0.0)
    wide_logits, wide_mask = pad_wider(logits, mask, 6)
    assert torch.allclose(losses.smoothness_loss(logits, mask), losses.smoothness_loss(wide_logits, wide_mask))
    assert torch.allclose(losses.diversity_loss(logits.softmax(-1), mask),
                          losses.diversity_loss(wide_logits.softmax(-1), wide_mask))
    # merged to the batch's most runs, or (graphs) to its full width: the same runs, the rest padding
    merged, merged_mask = merge_runs(logits.softmax(-1), mask, sample=False)
    fixed, fixed_mask = merge_runs(logits.softmax(-1), mask, sample=False, width=7)
    assert torch.equal(fixed[:, :merged.shape[1]], merged) and fixed_mask[:, merged.shape[1]:].all()
    # the gradient penalty cuts to the shorter of the longest real and generated sequences
    disc = Discriminator(5, hidden_dim=8, kernel_size=3)
    real_lengths = torch.tensor([5, 3, 5])
    real_mask = torch.arange(5)[None, :] >= real_lengths[:, None]
    real = torch.nn.functional.one_hot(torch.randint(0, 5, (3, 5)), 5).float().masked_fill(real_mask[..., None], 0)
    fake = merged.masked_fill(merged_mask[..., None], 0.0)
    wide_real, wide_real_mask = pad_wider(real, real_mask, 4)
    wide_fake, wide_fake_mask = pad_wider(fixed, fixed_mask, 2)
    for norm in ("channel", "sequence"):
        torch.manual_seed(1)
        narrow = losses.gradient_penalty(disc, real, fake, norm)
        torch.manual_seed(1)
        wide = losses.gradient_penalty(disc, wide_real, wide_fake, norm, wide_real_mask, wide_fake_mask)
        assert torch.allclose(narrow, wide, atol=1e-6), norm


def test_diversity_loss_is_zero_for_uniform_use_and_near_one_for_collapse():
    uniform = torch.eye(4).unsqueeze(0)  # each phone once
    mask = torch.zeros(1, 4, dtype=torch.bool)
    assert losses.diversity_loss(uniform, mask).item() == pytest.approx(0.0, abs=1e-5)
    collapsed = torch.zeros(1, 4, 4)
    collapsed[..., 0] = 1.0
    assert losses.diversity_loss(collapsed, mask).item() == pytest.approx(0.75, abs=1e-4)


def test_straight_through_one_hot_is_hard_forward_and_soft_backward():
    logits = torch.tensor([[0.1, 2.0, -1.0]], requires_grad=True)
    hard = losses.straight_through_one_hot(logits.softmax(-1))
    assert torch.allclose(hard, torch.tensor([[0.0, 1.0, 0.0]]))
    (hard * torch.tensor([[1.0, 0.0, 0.0]])).sum().backward()
    assert logits.grad.abs().sum() > 0
    merged = torch.tensor([[[0.2, 0.7, 0.1], [0.0, 0.0, 0.0]]])  # a phone, then a padding row
    assert torch.equal(losses.straight_through_one_hot(merged), torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]))


def test_hard_adversarial_inputs_show_the_discriminator_one_hot_phones_and_still_train(toy, tmp_path):
    # No smoothness or diversity: only the discriminator's gradient, through the one-hot phones, can move G.
    loss = {"adversarial_hard": True, "smoothness": 0.0, "diversity": 0.0}
    trainer = GanTrainer(toy_config(toy, max_updates=4, loss=loss), tmp_path / "run")
    plans, widths = trainer._draw([trainer.train_bank, trainer.text_bank])
    fake = trainer._discriminator_batch(*plans, *widths)[2]
    assert set(fake.unique().tolist()) == {0.0, 1.0}
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.generator_update()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, trainer.generator.parameters()))


def test_bigram_distribution_counts_consecutive_phones_with_smoothing():
    joint = losses.bigram_distribution([np.array([0, 1, 2]), np.array([1, 2]), np.array([2])], 3, smoothing=0.0)
    expected = torch.zeros(3, 3)
    expected[0, 1], expected[1, 2] = 1 / 3, 2 / 3
    assert torch.allclose(joint, expected)
    smoothed = losses.bigram_distribution([np.array([0, 1])], 3, smoothing=1.0)
    assert smoothed.sum().item() == pytest.approx(1.0) and smoothed.min() > 0


def test_bigram_matching_loss_is_zero_at_the_text_statistics_and_ignores_padding():
    target = losses.bigram_distribution([np.array([0, 1, 0, 1, 0])], 2, smoothing=0.0) * 0.98 + 0.005
    alternating = torch.eye(2)[[0, 1, 0, 1, 0]].unsqueeze(0)
    mask = torch.zeros(1, 5, dtype=torch.bool)
    near_zero = losses.bigram_matching_loss(alternating * 0.99 + 0.005, mask, target).item()
    repeating = torch.eye(2)[[0, 0, 0, 0, 0]].unsqueeze(0) * 0.99 + 0.005
    assert near_zero < 0.05 < losses.bigram_matching_loss(repeating, mask, target).item()
    padded = torch.cat([alternating, torch.eye(2)[[0, 0]].unsqueeze(0)], dim=1) * 0.99 + 0.005
    padded_mask = torch.tensor([[False] * 5 + [True] * 2])
    assert losses.bigram_matching_loss(padded, padded_mask, target).item() == pytest.approx(near_zero, abs=1e-5)
    logits = torch.randn(1, 5, 2, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    losses.bigram_matching_loss(logits.softmax(-1), mask, target).backward()
    assert logits.grad.abs().sum() > 0


class _LinearScorer(torch.nn.Module):
    """score = sum over positions and channels of x * W: its input gradient is W for every sequence."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        return (x * self.weight[: x.shape[1]]).sum(dim=(1, 2))


def test_gradient_penalty_holds_one_norm_per_channel_or_one_per_sequence():
    weight = torch.tensor([[3.0, 0.0], [4.0, 1.0]])  # (T=2, C=2): channel norms 5 and 1, total norm sqrt(26)
    scorer = _LinearScorer(weight)
    real, fake = torch.rand(3, 2, 2), torch.rand(3, 4, 2)  # cut to the shorter length
    channel = losses.gradient_penalty(scorer, real, fake, "channel")
    sequence = losses.gradient_penalty(scorer, real, fake, "sequence")
    assert channel.item() == pytest.approx((5 - 1) ** 2 + (1 - 1) ** 2)
    assert sequence.item() == pytest.approx((26 ** 0.5 - 1) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="'frame'"):
        losses.gradient_penalty(scorer, real, fake, "frame")


def test_a_discriminator_under_the_sequence_penalty_learns_to_rank_generated_output_above_text():
    """The discriminator's first job: soft, near-uniform outputs against one-hot text of skewed phone use."""
    torch.manual_seed(0)
    phones, length = 12, 20
    frequencies = torch.linspace(1.0, 0.05, phones)
    disc = Discriminator(phones, hidden_dim=16, kernel_size=3)
    optimizer = torch.optim.Adam(disc.parameters(), lr=5e-4, betas=(0.5, 0.98))

    def batches() -> tuple[torch.Tensor, torch.Tensor]:
        real = torch.nn.functional.one_hot(torch.multinomial(frequencies, 16 * length, replacement=True),
                                           phones).float().view(16, length, phones)
        fake = (torch.randn(16, length, phones) * 0.3).softmax(-1)
        return real, fake

    for _ in range(300):
        real, fake = batches()
        loss = (losses.discriminator_loss(disc(fake, None), disc(real, None))
                + 1.5 * losses.gradient_penalty(disc, real, fake, "sequence"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    real, fake = batches()
    with torch.no_grad():
        assert disc(fake, None).mean() > disc(real, None).mean() + 0.5  # generated scores high (losses.py)


def test_check_discriminator_reports_whether_text_and_generated_output_are_told_apart(toy, tmp_path):
    from asr_gan.lab.check_discriminator import check_discriminator, main

    result = check_discriminator(toy_config(toy, **{"loss": {"gradient_penalty_norm": "sequence"}}), updates=150,
                                 batches=4)
    assert result["verdict"] == "separates" and result["gap"] > 0 and result["loss"] < result["chance_loss"]
    assert main(["--set", "features=" + str(tmp_path / "missing"), "text=" + str(toy["text"]),
                 "phones=" + str(toy["phones"])]) == 1  # a clear error, not a traceback
    # A checkpoint of another generator shape is named in the error instead of torch's traceback.
    train_gan(toy_config(toy, max_updates=2, valid_interval=2, generator={"kernel_size": 5}), tmp_path / "k5")
    with pytest.raises(ValueError, match="checkpoint_last.pt: its generator does not fit"):
        check_discriminator(toy_config(toy), updates=1, batches=1,
                            checkpoint=str(tmp_path / "k5" / "checkpoint_last.pt"))


def test_config_reads_yaml_and_dotted_overrides_and_rejects_unknown_settings(tmp_path):
    path = tmp_path / "gan.yaml"
    path.write_text(yaml.safe_dump({"features": "f", "text": "t", "phones": "p", "generator": {"hidden_layers": 2}}))
    config = load_config(path, ["loss.cycle_audio=0.5", "betas=0.4,0.9", "max_updates=10"])
    assert config.generator.hidden_layers == 2 and config.loss.cycle_audio == 0.5
    assert config.betas == (0.4, 0.9) and config.max_updates == 10
    assert config.loss.gradient_penalty == 1.5 and config.loss.diversity == 4.0  # wav2vec-U defaults
    assert config_to_dict(config)["loss"]["cycle_audio"] == 0.5
    with pytest.raises(ValueError, match="generator.kernal_size"):
        load_config(path, ["generator.kernal_size=3"])
    with pytest.raises(ValueError, match="unknown section"):
        load_config(path, ["optim.lr=1"])
    with pytest.raises(ValueError, match="gradient_penalty_norm"):
        load_config(path, ["loss.gradient_penalty_norm=frame"]).validate()


def test_gan_learns_the_toy_decipherment_task(toy, tmp_path):
    """Unsupervised: no reference reaches the learner; PER must end far below chance and below its start."""
    # Seed 1 with the audio cycle reached 10% PER at 2250 updates in the toy sweep of docs/results_history.md
    # (2% at 2750); the bounds below leave a wide margin. Not every seed converges (docs/results_history.md:
    # 2 of 3 with the audio cycle).
    config = toy_config(toy, max_updates=2250, valid_interval=250, seed=1)
    config.loss.cycle_audio = 1.0
    # The frame regularisers (asr_gan's before issue 36): with wav2vec-U's merged ones this seed ends at 61% PER
    # (docs/wav2vec_u_baseline.md: on the toy, seed 1 does not converge under the merged definition).
    config.loss.regularise = "frames"
    summary = train_gan(config, tmp_path / "run")
    records = read_metrics(tmp_path / "run")
    pers = [r["valid_per"] for r in records if "valid_per" in r]
    assert pers[0] > 0.8  # untrained: near chance
    best = read_checkpoint(tmp_path / "run" / "checkpoint_best.pt")
    selected_per = next(r["valid_per"] for r in records if r.get("step") == best["step"] and "valid_per" in r)
    assert min(pers) < 0.35 and selected_per < 0.45, pers
    cycle = [r["cycle_audio"] for r in records if "cycle_audio" in r]
    assert cycle[-1] < 0.7 * cycle[0]  # the audio cycle's reconstruction loss falls
    generator, inventory = load_generator(tmp_path / "run" / "checkpoint_best.pt")
    assert len(inventory) == 11 and isinstance(generator, Generator)
    assert summary["best_step"] == best["step"]


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(toy, tmp_path):
    overrides = {"max_updates": 40, "valid_interval": 20, "log_interval": 10, "seed": 5}
    straight = toy_config(toy, **overrides)
    straight.loss.cycle_audio = straight.loss.cycle_text = 0.5
    straight.loss.bigram = 1.0
    train_gan(straight, tmp_path / "straight")
    first = toy_config(toy, **{**overrides, "max_updates": 20})
    first.loss.cycle_audio = first.loss.cycle_text = 0.5
    first.loss.bigram = 1.0
    train_gan(first, tmp_path / "resumed")
    second = toy_config(toy, **overrides)
    second.loss.cycle_audio = second.loss.cycle_text = 0.5
    second.loss.bigram = 1.0
    train_gan(second, tmp_path / "resumed")
    a = read_checkpoint(tmp_path / "straight" / "checkpoint_last.pt")
    b = read_checkpoint(tmp_path / "resumed" / "checkpoint_last.pt")
    assert a["step"] == b["step"] == 40
    for key in ("generator", "discriminator", "reverse_generator"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resuming"
    strip = lambda rs: [{k: v for k, v in r.items() if k != "updates_per_second"} for r in rs]  # noqa: E731
    assert strip(read_metrics(tmp_path / "straight")) == strip(read_metrics(tmp_path / "resumed"))


def test_warm_start_from_deciphered_segments_starts_the_gan_from_a_reading_generator(toy, tmp_path):
    """Label-free labels (decipherment) -> cross-entropy warm start -> the step-0 record, a selectable candidate."""
    from asr_gan.lab import decipher

    decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "dec", clusters=11,
                 restarts=4, iterations=50, progress=False)
    config = toy_config(toy, max_updates=4, valid_interval=4, seed=3, select_after=0,
                        warm_start_labels=str(tmp_path / "dec" / "train.segments"), warm_start_updates=500,
                        warm_start_discriminator_updates=10)
    train_gan(config, tmp_path / "run")
    records = read_metrics(tmp_path / "run")
    start = records[0]
    assert start["step"] == 0 and start["warm_start_updates"] == 500 and "warm_start_d_adversarial" in start
    assert start["valid_per"] < 0.2, start  # an untrained generator is near chance (>0.8, the test above)
    assert "selectable" not in start
    assert records[-1]["step"] == 4
    # A run that keeps nothing before select_after marks the warm start as no candidate for the sweep.
    late = toy_config(toy, max_updates=2, valid_interval=2, seed=3, select_after=2,
                      warm_start_labels=str(tmp_path / "dec" / "train.segments"), warm_start_updates=5)
    train_gan(late, tmp_path / "late")
    assert read_metrics(tmp_path / "late")[0]["selectable"] is False
    # A run that ends before select_after keeps its last update, which therefore stays a candidate.
    short = toy_config(toy, max_updates=4, valid_interval=2, seed=3, select_after=10)
    train_gan(short, tmp_path / "short")
    assert [r.get("selectable") for r in read_metrics(tmp_path / "short") if "valid_per" in r] == [False, None]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_a_gan_started_at_the_true_mapping_stays_there(toy, tmp_path, device):
    """The right answer must be a fixed point of the game: warm-started from the toy's true segment labels,
    adversarial updates with wav2vec-U's losses keep the PER near zero (a discriminator on the wrong side, or
    a loss that pulls away from the truth, fails this). On CUDA the updates are replayed CUDA graphs."""
    config = toy_config(toy, max_updates=1000, valid_interval=250, seed=1, select_after=0, device=device,
                        warm_start_labels=str(toy["train_segments"]), warm_start_updates=600,
                        warm_start_discriminator_updates=200)
    config.loss.gradient_penalty_norm = "sequence"
    trainer = GanTrainer(config, tmp_path / "run")
    trainer.train()
    assert sorted(trainer.graphs) == (["discriminator", "generator"] if device == "cuda" else [])
    pers = [r["valid_per"] for r in read_metrics(tmp_path / "run") if "valid_per" in r]
    assert len(pers) == 5 and pers[0] < 0.05, pers  # the warm start reads the toy
    assert max(pers) < 0.08, pers  # and a thousand adversarial updates keep it reading


def test_a_uniform_diversity_target_pulls_a_true_reading_off_and_the_text_target_does_not(toy, tmp_path):
    """wav2vec-U's diversity term wants every phone used equally often; the toy's phones, like real ones, are
    not. Warm-started at the true mapping with the diversity term as the only loss (no adversarial term, no
    smoothness), in 300 generator updates the uniform target drags the reading off it and the text's phone
    frequencies do not."""
    final = {}
    for target in ("uniform", "text"):
        config = toy_config(toy, max_updates=300, valid_interval=150, seed=1, select_after=0,
                            warm_start_labels=str(toy["train_segments"]), warm_start_updates=600)
        config.loss.adversarial, config.loss.smoothness, config.loss.diversity_target = 0.0, 0.0, target
        trainer = GanTrainer(config, tmp_path / target)
        assert (trainer.text_unigrams is not None) == (target == "text")
        trainer.train()
        pers = [r["valid_per"] for r in read_metrics(tmp_path / target) if "valid_per" in r]
        assert pers[0] < 0.05, (target, pers)  # both start reading the toy
        final[target] = pers[-1]
    assert final["uniform"] > 0.15 and final["text"] < 0.1, final
    with pytest.raises(ValueError, match="diversity_target"):
        toy_config(toy, loss={"diversity_target": "zipf"}).validate()


def test_unigram_matching_is_zero_at_the_text_frequencies_and_grows_when_a_phone_goes_unused():
    from asr_gan.train.losses import unigram_distribution, unigram_matching_loss

    target = unigram_distribution([np.array([0, 0, 1, 2]), np.array([0, 1])], 3, smoothing=0.0)
    assert torch.allclose(target, torch.tensor([0.5, 1 / 3, 1 / 6]))
    mask = torch.tensor([[False, False, True]])
    matched = target.expand(1, 3, 3).clone()
    assert unigram_matching_loss(matched, mask, target).abs() < 1e-6  # the padding row is not counted
    collapsed = torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])
    assert unigram_matching_loss(collapsed, mask, target) > 1.0


def test_warm_start_labels_must_give_one_phone_per_feature_row(toy, tmp_path):
    features = FeatureSet(toy["train"])
    lines = [f"{u} " + " ".join(["<SIL>"] * int(n)) for u, n in zip(features.utt_ids, features.lengths)]
    lines[3] = lines[3].rsplit(" ", 1)[0]
    labels = tmp_path / "train.segments"
    labels.write_text("\n".join(lines) + "\n")
    config = toy_config(toy, max_updates=2, warm_start_labels=str(labels), warm_start_updates=5)
    with pytest.raises(ValueError, match=f"train.segments: {features.utt_ids[3]} has"):
        GanTrainer(config, tmp_path / "run")
    with pytest.raises(ValueError, match="stride must be 1"):
        toy_config(toy, warm_start_labels=str(labels), warm_start_updates=5, generator={"stride": 2}).validate()
    with pytest.raises(ValueError, match="warm_start_labels is not"):
        toy_config(toy, warm_start_updates=5).validate()


def test_bigram_matching_pulls_the_outputs_toward_the_text_bigrams(toy, tmp_path):
    config = toy_config(toy, max_updates=400, valid_interval=200, log_interval=50, seed=2)
    config.loss.bigram = 1.0
    train_gan(config, tmp_path / "run")
    bigram = [r["g_bigram"] for r in read_metrics(tmp_path / "run") if "g_bigram" in r]
    assert len(bigram) == 8 and bigram[-1] < 0.85 * bigram[0], bigram


@pytest.mark.parametrize("adversarial", [1.0, 0.0])
def test_the_adversarial_weight_decides_whether_the_discriminator_moves_the_generator(toy, tmp_path, adversarial):
    # Two identical trainers whose discriminators differ: their generator updates agree only without the
    # adversarial term (loss.adversarial=0, e.g. bigram matching alone).
    trainers = []
    for name in ("a", "b"):
        config = toy_config(toy, max_updates=2, valid_interval=2)
        config.loss.adversarial, config.loss.bigram = adversarial, 1.0
        trainers.append(GanTrainer(config, tmp_path / name))
    noise = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in trainers[1].discriminator.parameters():
            p.add_(torch.randn(p.shape, generator=noise))
    for trainer in trainers:
        torch.manual_seed(0)  # the same dropout masks and sampled run positions in both updates
        trainer.generator_update()
    same = all(torch.equal(a, b) for a, b in zip(trainers[0].generator.parameters(),
                                                 trainers[1].generator.parameters()))
    assert same == (adversarial == 0.0)


def test_without_an_adversarial_term_every_update_trains_the_generator(toy, tmp_path):
    config = toy_config(toy, max_updates=6, valid_interval=6, log_interval=6)
    config.loss.adversarial, config.loss.bigram = 0.0, 1.0
    trainer = GanTrainer(config, tmp_path / "run")
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))
    logged = [r for r in read_metrics(tmp_path / "run") if "g_bigram" in r]
    assert logged and not any(k.startswith("d_") for r in logged for k in r), logged
    # all six updates were the generator's: its optimiser stepped six times
    assert trainer.generator_optimizer.state_dict()["state"][0]["step"] == 6


@pytest.mark.parametrize("adversarial", [1.0, 0.0])
def test_the_feature_discriminator_trains_and_the_phone_one_only_with_its_term(toy, tmp_path, adversarial):
    # The full two-sided cycle (loss.feature_adversarial): real features against the reverse generator's.
    config = toy_config(toy, max_updates=6, valid_interval=6, log_interval=6)
    config.loss.adversarial, config.loss.feature_adversarial = adversarial, 1.0
    trainer = GanTrainer(config, tmp_path / "run")
    assert trainer.feature_discriminator is not None
    phone_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    feature_before = [p.detach().clone() for p in trainer.feature_discriminator.parameters()]
    trainer.train()
    phone_moved = any(not torch.equal(a, b) for a, b in zip(phone_before, trainer.discriminator.parameters()))
    feature_moved = any(not torch.equal(a, b) for a, b in zip(feature_before,
                                                               trainer.feature_discriminator.parameters()))
    assert feature_moved and phone_moved == (adversarial > 0)
    logged = [r for r in read_metrics(tmp_path / "run") if "d_feature_adversarial" in r]
    assert logged and all(("d_adversarial" in r) == (adversarial > 0) for r in logged), logged
    assert all(np.isfinite(r["g_feature_adversarial"]) for r in logged)
    # discriminator and generator updates still alternate: three of each
    assert trainer.generator_optimizer.state_dict()["state"][0]["step"] == 3


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(toy, tmp_path):
    run = tmp_path / "run"
    train_gan(toy_config(toy, max_updates=20, valid_interval=20, log_interval=10), run)
    good = read_checkpoint(run / "checkpoint_last.pt")
    broken = tmp_path / "broken"
    features = FeatureSet(toy["train"])
    from asr_gan.features.storage import FeatureSetWriter

    with FeatureSetWriter(broken, dim=features.dim) as writer:
        for i in range(len(features)):
            writer.add(features.utt_ids[i], np.full_like(np.asarray(features[i]), np.nan))
    config = toy_config(toy, max_updates=60, valid_interval=20, log_interval=10, features=str(broken))
    trainer = GanTrainer(config, run)
    with pytest.raises(TrainingDiverged, match="non-finite .* intact"):
        trainer.train()
    after = read_checkpoint(run / "checkpoint_last.pt")
    assert after["step"] == good["step"] == 20
    assert all(torch.isfinite(t).all() for t in after["generator"].values())


def test_cli_names_an_unknown_setting_and_exits_1(tmp_path):
    result = subprocess.run([sys.executable, "-m", "asr_gan.train", "--out", str(tmp_path / "r"),
                             "--set", "loss.cycle_adio=1"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "loss.cycle_adio" in result.stderr


def test_two_processes_under_torchrun_with_gloo_train_identical_replicas(toy, tmp_path):
    config = toy_config(toy, max_updates=30, valid_interval=15, log_interval=10)
    config.loss.cycle_audio = 1.0
    path = tmp_path / "gan.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    with socket.socket() as probe:  # a free port: a fixed one collides with any other job on the machine
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    result = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", port, "-m", "asr_gan.train",
                             "--config", str(path), "--out", str(tmp_path / "ddp")],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_checkpoint(tmp_path / "ddp" / "checkpoint_last.pt")["step"] == 30


def test_the_warm_up_updates_before_a_graph_capture_are_undone_exactly():
    from asr_gan.train.graphs import _restore, _snapshot

    torch.manual_seed(0)
    disc = Discriminator(3, hidden_dim=8, kernel_size=3)
    optimizer = torch.optim.Adam(disc.parameters(), lr=0.1)
    before = [p.detach().clone() for p in disc.parameters()]
    saved = _snapshot([disc], [optimizer])  # no optimiser state yet: it is made by the first step
    for _ in range(3):
        optimizer.zero_grad()
        disc(torch.rand(2, 5, 3), None).sum().backward()
        optimizer.step()
    assert not all(torch.equal(a, p) for a, p in zip(before, disc.parameters()))
    _restore(saved, [optimizer])
    assert all(torch.equal(a, p) for a, p in zip(before, disc.parameters()))
    # the state made by the warm-up is that of an optimiser that never stepped
    assert all(float(v.abs().sum()) == 0.0 for state in optimizer.state.values() for v in state.values())


def test_when_a_graph_cannot_be_captured_training_goes_on_eagerly_and_says_so(toy, tmp_path, capsys):
    # On this CPU machine capture fails at its first CUDA call, as it would on a CUDA stack that cannot capture.
    trainer = GanTrainer(toy_config(toy, max_updates=4, valid_interval=4), tmp_path / "run")
    trainer.use_graphs = True
    longest = int(trainer.train_bank.lengths.max())
    assert f"CUDA graphs (batches padded to {longest} audio" in trainer.describe_execution()
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    logged = trainer.discriminator_update()
    assert "CUDA graph capture failed" in capsys.readouterr().out
    assert trainer.describe_execution() == "device cpu, float32, updates launched eagerly"
    assert not trainer.use_graphs and not trainer.graphs and torch.isfinite(logged["d_total"])
    assert not all(torch.equal(a, p) for a, p in zip(before, trainer.discriminator.parameters()))  # it updated
    assert torch.isfinite(trainer.generator_update()["g_total"])
