"""The wav2vec-U baseline, term by term, against an independent statement of the published formulas.

Baevski et al. 2021 (wav2vec-U, section 4 and its reference implementation's definitions), restated here in
plain tensor arithmetic on a small fixed batch with fixed weights:

- generator: dropout on the input, one conv of kernel 4 padded by 2 on both sides, so an input of L positions
  gives L + 1 valid outputs (the padding mask of the input shifted right by one);
- JOIN segmenter while training: one position's logits per run of one argmax; a batch of B sequences becomes
  B x R rows, R the most runs of any sequence, a padded sequence counting one run more; rows past a sequence's
  runs are zero logits;
- discriminator: causal convs, per-position scores averaged over the real positions;
- D loss: BCE(fake scores, 1) + BCE(real scores, 0), each summed over the batch and divided by B;
- gradient penalty: sum over sequences and channels of (||d score / d input||_2 over time - 1)^2, divided by B;
- G loss: BCE(fake scores, 0) / B + 0.5 x smoothness + 4 x code penalty, where smoothness is the mean over
  B x (R - 1) x V of squared differences of consecutive merged logits (zero where the later row is padding) and
  the code penalty is (V - exp(entropy of the mean softmax over all B x R merged rows)) / V.

The trainer's own update functions run on the batch (asr_gan/train/gan_step.py), and every term and every gradient is
compared with autograd of the computation below. The JOIN segmenter's random choice of a position per run is read
back from the trainer's merged rows (checked to be one position per run) and used by the independent computation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from asr_gan.models.generator import Generator
from asr_gan.train import gan_step as gan_module
from asr_gan.train import losses
from asr_gan.train.config import config_from_dict
from asr_gan.train.data import SequenceBank
from asr_gan.train.gan import GanTrainer
from asr_gan.train.merge import join_rows, merge_runs
from tests.fixtures.toy_phones import make_toy_task

# Three utterances (5, 3 and 4 segments) and three text lines (4, 2 and 5 phones); repeated rows make runs.
AUDIO_LENGTHS = (5, 3, 4)
TEXT_LINES = ([1, 4, 4, 2], [3, 7], [5, 1, 9, 2, 6])


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, Path]:
    return make_toy_task(tmp_path_factory.mktemp("toy"), num_audio=20, num_valid=5, num_text=50)


def fixed_audio(dim: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(4, dim)).astype(np.float32)
    patterns = ([0, 0, 1, 1, 2], [3, 3, 0], [2, 1, 1, 3])
    return [rows[p] for p in patterns]


def baseline_trainer(toy: dict[str, Path], tmp_path: Path, **overrides) -> GanTrainer:
    """The default (wav2vec-U) config with a narrow discriminator, no input dropout (so the step is deterministic
    but for the JOIN segmenter's draw), and the fixed batch in its banks."""
    values = {"features": str(toy["train"]), "text": str(toy["text"]), "phones": str(toy["phones"]),
              "batch_size": 3, "device": "cpu", "tensorboard": False, "progress": False, "seed": 3,
              "discriminator": {"hidden_dim": 8}, "generator": {"input_dropout": 0.0}}
    values.update(overrides)
    torch.manual_seed(0)
    trainer = GanTrainer(config_from_dict(values), tmp_path)
    trainer.train_bank = SequenceBank(fixed_audio(trainer.input_dim), trainer.device)
    trainer.text_bank = SequenceBank([np.array(t) for t in TEXT_LINES], trainer.device)
    with torch.no_grad():  # nearly one matrix for all four taps: neighbouring outputs share inputs, and argmaxes
        weight = trainer.generator.output.weight
        weight.copy_(weight[:, :, :1].expand_as(weight) * 2.0 + 0.2 * weight)
    return trainer


def full_plan(bank: SequenceBank) -> tuple[torch.Tensor, int]:
    plan = bank.plan(np.arange(len(bank)))
    return torch.from_numpy(plan), int(plan[2].max())


def gradients_of(trainer: GanTrainer, monkeypatch) -> dict[str, torch.Tensor]:
    """Make the trainer's updates record the gradients of their loss instead of stepping."""
    grads: dict[str, torch.Tensor] = {}

    def record(loss, optimizer, params, clip=True):
        for p in params:
            p.grad = None
        loss.backward()
        names = {id(p): n for module in trainer._modules() for n, p in module.named_parameters()}
        grads.update({names[id(p)]: p.grad.clone() for p in params if p.grad is not None})

    monkeypatch.setattr(trainer, "_apply", record)
    return grads


def recorded_merges(monkeypatch) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(input, merged, merged mask) of every merge_runs call the trainer makes."""
    calls = []

    def recording(values, padding_mask, sample, width=None):
        merged, mask = merge_runs(values, padding_mask, sample, width)
        calls.append((values.detach(), merged.detach(), mask))
        return merged, mask

    monkeypatch.setattr(gan_module, "merge_runs", recording)
    return calls


# ------------------------------------------------------------------------------ the independent computation

def reference_generator_logits(generator: Generator, audio: list[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
    """(B, T + 1, V) logits of the padded batch by explicit sums over the kernel, and each sequence's L + 1."""
    weight = generator.output.weight  # (V, D, 4)
    kernel = weight.shape[-1]
    width = max(len(a) for a in audio)
    batch = torch.zeros(len(audio), width + 2 * (kernel // 2), weight.shape[1])
    for b, rows in enumerate(audio):
        standard = (torch.from_numpy(rows) - generator.feature_mean) / generator.feature_std
        batch[b, kernel // 2: kernel // 2 + len(rows)] = standard
    outputs = width + 2 * (kernel // 2) - kernel + 1
    logits = torch.stack([sum(batch[:, o + k] @ weight[:, :, k].T for k in range(kernel)) for o in range(outputs)],
                         dim=1)
    return logits, [len(a) + 1 for a in audio]


def chosen_positions(frame_logits: torch.Tensor, merged: torch.Tensor, length: int) -> list[int]:
    """The position of each merged row among a sequence's frame rows, checked to be one position of each run."""
    best = frame_logits[:length].argmax(-1).tolist()
    runs = [[0]]
    for t in range(1, length):
        (runs[-1].append(t) if best[t] == best[t - 1] else runs.append([t]))
    chosen = []
    for r, run in enumerate(runs):
        matches = [t for t in run if torch.allclose(frame_logits[t], merged[r], atol=1e-5)]
        assert len(matches) == 1, f"merged row {r} is not one of its run's positions {run}: {matches}"
        chosen.append(matches[0])
    return chosen


def join_segmenter(frame_logits: torch.Tensor, lengths: list[int], chosen: list[list[int]]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, R, V) merged logits and (B, R) padding, R = max(runs + 1 if the sequence is padded else runs)."""
    width = frame_logits.shape[1]
    rows = max(len(c) + (length < width) for c, length in zip(chosen, lengths))
    merged = torch.zeros(len(lengths), rows, frame_logits.shape[-1])
    padding = torch.ones(len(lengths), rows, dtype=torch.bool)
    for b, positions in enumerate(chosen):
        merged[b, :len(positions)] = frame_logits[b, positions]
        padding[b, :len(positions)] = False
    return merged, padding


def reference_scores(discriminator, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
    """Causal convs (kernel k: k - 1 zeros on the left) conv, conv, GELU, conv; mean over the real positions."""
    first, middle, last = discriminator.net[0], discriminator.net[2], discriminator.net[4]

    def causal(h, conv):
        return F.conv1d(F.pad(h, (conv.kernel_size[0] - 1, 0)), conv.weight, conv.bias)

    h = x.transpose(1, 2)
    per_position = causal(F.gelu(causal(causal(h, first), middle)), last)[:, 0]  # (B, T)
    if padding is None:
        return per_position.mean(dim=1)
    valid = (~padding).float()
    return (per_position * valid).sum(dim=1) / valid.sum(dim=1)


def bce_sum(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy with logits, summed: -t log sigmoid(s) - (1 - t) log(1 - sigmoid(s))."""
    return -(target * F.logsigmoid(scores) + (1 - target) * F.logsigmoid(-scores)).sum()


def reference_smoothness(merged: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    batch, rows, vocab = merged.shape
    total = torch.zeros(())
    for b in range(batch):
        for r in range(rows - 1):
            if not padding[b, r + 1]:
                total = total + ((merged[b, r] - merged[b, r + 1]) ** 2).sum()
    return total / (batch * (rows - 1) * vocab)


def reference_code_penalty(merged: torch.Tensor) -> torch.Tensor:
    vocab = merged.shape[-1]
    average = merged.reshape(-1, vocab).softmax(-1).mean(dim=0)  # padding rows are zero logits: uniform
    perplexity = torch.exp(-(average * torch.log(average + 1e-7)).sum())
    return (vocab - perplexity) / vocab


def reference_gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor,
                               alpha: torch.Tensor) -> torch.Tensor:
    batch, steps = min(real.shape[0], fake.shape[0]), min(real.shape[1], fake.shape[1])
    mixed = alpha.reshape(-1, 1, 1) * real[:batch, :steps] + (1 - alpha.reshape(-1, 1, 1)) * fake[:batch, :steps]
    mixed = mixed.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(reference_scores(discriminator, mixed, None).sum(), mixed, create_graph=True)
    return ((grads.pow(2).sum(dim=1).sqrt() - 1) ** 2).sum() / batch


# ------------------------------------------------------------------------------------------------ tests

def test_generator_step_matches_wav2vec_u_terms_and_gradients(toy, tmp_path, monkeypatch):
    trainer = baseline_trainer(toy, tmp_path)
    merges = recorded_merges(monkeypatch)
    grads = gradients_of(trainer, monkeypatch)
    plan, width = full_plan(trainer.train_bank)
    logged = trainer._generator_step([plan], [width])

    audio = fixed_audio(trainer.input_dim)
    frame_logits, lengths = reference_generator_logits(trainer.generator, audio)
    (_, merged_seen, _), = merges
    # The generator's outputs: L + 1 per sequence, T + 1 wide.
    generator_logits, out_mask = trainer.generator(*trainer.train_bank.take(plan, width))
    assert generator_logits.shape[1] == width + 1
    assert ((~out_mask).sum(dim=1).tolist()) == lengths
    valid = ~out_mask
    assert torch.allclose(generator_logits[valid], frame_logits[valid], atol=1e-5)

    chosen = [chosen_positions(frame_logits[b].detach(), merged_seen[b], lengths[b]) for b in range(len(audio))]
    assert any(len(c) < n for c, n in zip(chosen, lengths)), "the fixed batch should have a run longer than one"
    merged, padding = join_segmenter(frame_logits, lengths, chosen)
    fake = merged.softmax(-1).masked_fill(padding.unsqueeze(-1), 0.0)
    batch = len(audio)
    adversarial = bce_sum(reference_scores(trainer.discriminator, fake, padding), 0.0) / batch
    smoothness = reference_smoothness(merged, padding)
    code_penalty = reference_code_penalty(merged)
    total = adversarial + 0.5 * smoothness + 4.0 * code_penalty

    for name, expected in (("g_adversarial", adversarial), ("g_smoothness", smoothness),
                           ("g_diversity", code_penalty), ("g_total", total)):
        assert logged[name].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7), name
    (expected_grad,) = torch.autograd.grad(total, trainer.generator.output.weight)
    assert set(grads) == {"output.weight"}  # the discriminator is not trained in a generator update
    assert torch.allclose(grads["output.weight"], expected_grad, rtol=1e-4, atol=1e-6)


def test_generator_step_with_frames_regularisers_reads_the_frame_logits(toy, tmp_path, monkeypatch):
    """`loss.regularise=frames` (asr_gan before issue 36): both terms on the unmerged logits, padding excluded."""
    trainer = baseline_trainer(toy, tmp_path, loss={"regularise": "frames"})
    gradients_of(trainer, monkeypatch)
    plan, width = full_plan(trainer.train_bank)
    logged = trainer._generator_step([plan], [width])
    frame_logits, lengths = reference_generator_logits(trainer.generator, fixed_audio(trainer.input_dim))
    batch, outputs, vocab = frame_logits.shape
    squares = sum(((frame_logits[b, t] - frame_logits[b, t + 1]) ** 2).sum()
                  for b in range(batch) for t in range(lengths[b] - 1))
    assert logged["g_smoothness"].item() == pytest.approx((squares / (batch * (max(lengths) - 1) * vocab)).item(),
                                                          rel=1e-5)
    rows = torch.cat([frame_logits[b, :lengths[b]] for b in range(batch)]).softmax(-1)
    average = rows.mean(dim=0)
    perplexity = torch.exp(-(average * torch.log(average + 1e-7)).sum())
    assert logged["g_diversity"].item() == pytest.approx(((vocab - perplexity) / vocab).item(), rel=1e-5)


def test_discriminator_step_matches_wav2vec_u_terms_and_gradients(toy, tmp_path, monkeypatch):
    trainer = baseline_trainer(toy, tmp_path)
    merges = recorded_merges(monkeypatch)
    grads = gradients_of(trainer, monkeypatch)
    alpha = torch.tensor([0.25, 0.6, 0.9])
    penalty = losses.gradient_penalty
    monkeypatch.setattr(losses, "gradient_penalty", lambda *args, **kwargs: penalty(*args, **kwargs, alpha=alpha))
    audio_plan, audio_width = full_plan(trainer.train_bank)
    text_plan, text_width = full_plan(trainer.text_bank)
    logged = trainer._discriminator_step([audio_plan, text_plan], [audio_width, text_width])

    (probs_seen, merged_seen, merged_mask), = merges
    # The discriminator sees the softmax of the generator's merged outputs: what JOIN then softmax gives.
    frame_logits, lengths = reference_generator_logits(trainer.generator, fixed_audio(trainer.input_dim))
    chosen = [chosen_positions(frame_logits[b].detach().softmax(-1), merged_seen[b], lengths[b])
              for b in range(len(lengths))]
    merged, padding = join_segmenter(frame_logits.detach(), lengths, chosen)
    fake = merged.softmax(-1).masked_fill(padding.unsqueeze(-1), 0.0)[:, :merged_seen.shape[1]]
    fake_padding = padding[:, :merged_seen.shape[1]]
    assert torch.allclose(fake, merged_seen, atol=1e-6)
    real = torch.zeros(len(TEXT_LINES), text_width, len(trainer.inventory))
    real_padding = torch.ones(len(TEXT_LINES), text_width, dtype=torch.bool)
    for b, line in enumerate(TEXT_LINES):
        real[b, torch.arange(len(line)), torch.tensor(line)] = 1.0
        real_padding[b, :len(line)] = False

    batch = len(TEXT_LINES)
    adversarial = (bce_sum(reference_scores(trainer.discriminator, fake, fake_padding), 1.0)
                   + bce_sum(reference_scores(trainer.discriminator, real, real_padding), 0.0)) / batch
    gradient_penalty = reference_gradient_penalty(trainer.discriminator, real, fake, alpha)
    total = adversarial + 1.5 * gradient_penalty
    assert logged["d_adversarial"].item() == pytest.approx(adversarial.item(), rel=1e-5)
    assert logged["d_gradient_penalty"].item() == pytest.approx(gradient_penalty.item(), rel=1e-5)
    assert logged["d_total"].item() == pytest.approx(total.item(), rel=1e-5)
    params = dict(trainer.discriminator.named_parameters())
    expected = dict(zip(params, torch.autograd.grad(total, list(params.values()))))
    assert set(grads) == set(params)  # the generator is not trained in a discriminator update
    for name, value in expected.items():
        assert torch.allclose(grads[name], value, rtol=1e-4, atol=1e-6), name


def test_join_rows_counts_one_more_run_for_a_padded_sequence():
    # runs: 2 (padded), 3 (the longest, unpadded), 1 (padded)  ->  R = max(2 + 1, 3, 1 + 1) = 3
    merged_mask = torch.tensor([[False, False, True], [False, False, False], [False, True, True]])
    padding = torch.tensor([[False] * 4 + [True], [False] * 5, [False] * 2 + [True] * 3])
    assert join_rows(merged_mask, padding).item() == 3
    # the sequence with most runs is padded: one more row than any sequence has runs
    padding = torch.tensor([[False] * 5, [False] * 4 + [True], [False] * 2 + [True] * 3])
    assert join_rows(merged_mask, padding).item() == 4


def test_merged_regularisers_do_not_depend_on_how_wide_the_batch_is_padded():
    """A CUDA graph pads batches to a static width; the merged terms read their widths on the device."""
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 5)
    mask = torch.arange(6)[None, :] >= torch.tensor([6, 4, 2])[:, None]
    wide_logits = torch.cat([logits, torch.zeros(3, 4, 5)], dim=1)
    wide_mask = torch.cat([mask, torch.ones(3, 4, dtype=torch.bool)], dim=1)
    terms = []
    for values, padding, width in ((logits, mask, None), (wide_logits, wide_mask, 10)):
        torch.manual_seed(1)
        merged, merged_mask = merge_runs(values, padding, sample=True, width=width)
        rows = join_rows(merged_mask, padding)
        probs = merged.softmax(-1).masked_fill(merged_mask.unsqueeze(-1), 0.0)
        terms.append((losses.smoothness_loss(merged, merged_mask, rows).item(),
                      losses.diversity_loss(probs, merged_mask, rows).item()))
    assert terms[0] == pytest.approx(terms[1], rel=1e-5)


def test_wav2vec_u_generator_padding_gives_one_more_output_and_same_padding_keeps_the_length():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3)
    mask = torch.arange(6)[None, :] >= torch.tensor([6, 4])[:, None]
    reference = Generator(3, 5, kernel_size=4, input_dropout=0.0, conv_padding="wav2vec_u").eval()
    logits, out_mask = reference(x, mask)
    assert logits.shape[1] == 7 and (~out_mask).sum(dim=1).tolist() == [7, 5]
    assert reference.output_length(4) == 5
    same = Generator(3, 5, kernel_size=4, input_dropout=0.0, conv_padding="same").eval()
    same.load_state_dict(reference.state_dict())
    same_logits, same_mask = same(x, mask)
    assert same_logits.shape[1] == 6 and (~same_mask).sum(dim=1).tolist() == [6, 4]
    # the same weights, read one position later: reference output t + 1 sees the inputs same-output t sees
    assert torch.allclose(logits[0, 1:6], same_logits[0, :5], atol=1e-6)
    # an odd kernel gives T outputs either way
    odd = Generator(3, 5, kernel_size=3, input_dropout=0.0, conv_padding="wav2vec_u").eval()
    assert odd(x, mask)[0].shape[1] == 6


def test_updates_clip_the_gradient_norm_at_five(toy, tmp_path):
    trainer = baseline_trainer(toy, tmp_path)
    params = list(trainer.generator.parameters())
    seen = {}

    class Recorder:
        def zero_grad(self, set_to_none=True):
            for p in params:
                p.grad = None

        def step(self):
            seen["norm"] = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params))

    loss = 1000.0 * sum(p.sum() for p in params)
    trainer._apply(loss, Recorder(), params)
    assert seen["norm"] == pytest.approx(5.0, rel=1e-4)


def test_the_default_optimisers_are_wav2vec_u_s():
    config = config_from_dict({})
    assert (config.generator_lr, config.discriminator_lr) == (4e-4, 5e-4)
    assert config.betas == (0.5, 0.98) and config.adam_eps == 1e-6
    assert (config.generator_weight_decay, config.discriminator_weight_decay) == (0.0, 1e-4)
    assert config.decoupled_weight_decay and config.clip_norm == 5.0
    assert config.loss.regularise == "merged" and config.generator.conv_padding == "wav2vec_u"
    assert config.generator.kernel_size == 4 and config.generator.input_dropout == 0.1
