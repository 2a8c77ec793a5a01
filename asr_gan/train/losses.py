"""The GAN's losses. Each is a mean over the batch, so weights do not depend on the batch size.

Convention: the discriminator scores GENERATED sequences high (target 1) and real text low (target 0), as in
wav2vec-U; the generator's adversarial loss pushes its outputs' scores to 0.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def discriminator_loss(fake_scores: torch.Tensor, real_scores: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: fake (B_f,) -> 1, real (B_r,) -> 0."""
    return (F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))
            + F.binary_cross_entropy_with_logits(real_scores, torch.zeros_like(real_scores)))


def generator_adversarial_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator wants its outputs (B,) scored as real (0)."""
    return F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, norm: str = "channel",
                     real_mask: torch.Tensor | None = None, fake_mask: torch.Tensor | None = None,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient penalty on random interpolations of real (B_r, L_r, C) and fake (B_f, L_f, C).

    Both are cut to the shorter batch and to the shorter of their longest sequences (with the padding masks
    (B, L) given, that length is read from them on the device, so batches padded wider than their longest
    sequence, as CUDA graphs need, give the same penalty as batches padded to it). `norm="channel"` is
    wav2vec-U's: the gradient norm is taken over time for each (sequence, channel), and the C penalties of a
    sequence are summed. `norm="sequence"` is WGAN-GP's: one norm per sequence over all its positions and
    channels. Either way the result is the mean over sequences. `alpha` (B,) fixes the interpolation weights of
    real (drawn uniformly in [0, 1) when None).

    The two differ in what they let the discriminator learn. Per channel, every phone's response has its
    norm held at 1, so its sign can only change by crossing zero, where the penalty is highest; a narrow
    discriminator keeps the signs its first updates gave it, and on the demo corpus that ranked text as
    generated (docs/gan_investigation.md, "The gradient penalty"). Per sequence, only the total is held, and
    the direction is free.
    """
    batch = min(real.shape[0], fake.shape[0])
    length = min(real.shape[1], fake.shape[1])
    real, fake = real[:batch, :length].detach(), fake[:batch, :length].detach()
    cut = None
    if real_mask is not None and fake_mask is not None:
        longest = torch.minimum((~real_mask[:batch]).sum(dim=1).max(), (~fake_mask[:batch]).sum(dim=1).max())
        cut = (torch.arange(length, device=real.device) >= longest).expand(batch, length)
    if alpha is None:
        alpha = torch.rand(batch, device=real.device, dtype=real.dtype)
    alpha = alpha[:batch].reshape(batch, 1, 1).to(real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    # Positions past the cut are zeroed inside the discriminator: causal convs never carry them back, and
    # their gradients are zero, as if they had been cut off.
    scores = discriminator(mixed, cut)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    if norm == "channel":
        return ((grads.norm(2, dim=1) - 1) ** 2).sum() / batch
    if norm == "sequence":
        return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).sum() / batch
    raise ValueError(f"gradient penalty norm {norm!r}: expected 'channel' or 'sequence'")


def smoothness_loss(logits: torch.Tensor, padding_mask: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference of consecutive logits (B, T, P), zero where the later position is padding.

    The mean is over B x (rows - 1) x P. `rows` (a 0-dim tensor) defaults to the longest sequence of the mask (not
    the padded width), so a batch padded wider for a CUDA graph has the same loss; on merged logits wav2vec-U's
    mean is over its JOIN segmenter's rows (merge.join_rows).
    """
    diff = (logits[:, :-1] - logits[:, 1:]) ** 2
    diff = diff.masked_fill(padding_mask[:, 1:].unsqueeze(-1), 0.0)
    if rows is None:
        rows = (~padding_mask).sum(dim=1).max()
    return diff.sum() / ((rows - 1).clamp(min=1) * logits.shape[0] * logits.shape[2])


def _batch_mean(probs: torch.Tensor, padding_mask: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """(P,) mean of the distributions (B, T, P): over the real positions, or with `rows` (a 0-dim tensor) over all
    B x rows positions, each padding position among them counted as the uniform distribution (what softmax makes of
    the zero logits wav2vec-U's JOIN segmenter leaves at padding)."""
    valid = (~padding_mask).unsqueeze(-1).to(probs.dtype)
    real_sum = (probs * valid).sum(dim=(0, 1))
    if rows is None:
        return real_sum / valid.sum().clamp(min=1.0)
    total = (rows * probs.shape[0]).to(probs.dtype)
    padding = total - valid.sum()
    return (real_sum + padding / probs.shape[-1]) / total.clamp(min=1.0)


def diversity_loss(probs: torch.Tensor, padding_mask: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """(P - perplexity of the batch-averaged distribution) / P: 0 when every phone is used equally often,
    near 1 when the generator collapses onto one phone (wav2vec-U's code penalty). probs (B, T, P); the average is
    over the real positions, or with `rows` as wav2vec-U takes it on merged outputs (`_batch_mean`)."""
    mean = _batch_mean(probs, padding_mask, rows)
    perplexity = torch.exp(-(mean * torch.log(mean + 1e-7)).sum())
    phones = probs.shape[-1]
    return (phones - perplexity) / phones


def unigram_distribution(sequences: list[np.ndarray], num_phones: int, smoothing: float = 0.5) -> torch.Tensor:
    """(P,) phone frequencies over `sequences` (id arrays), add-`smoothing`."""
    counts = np.full(num_phones, smoothing, dtype=np.float64)
    for sequence in sequences:
        np.add.at(counts, np.asarray(sequence, dtype=np.int64), 1.0)
    return torch.from_numpy(counts / counts.sum()).float()


def unigram_matching_loss(probs: torch.Tensor, padding_mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target || mean distribution of the batch): probs (B, R, P) merged phone distributions, target (P,).

    The diversity term with the text's phone frequencies as its target instead of the uniform distribution:
    zero when the batch uses phones as often as the text does, large when it leaves out phones the text uses.
    """
    mean = _batch_mean(probs, padding_mask)
    return (target * (torch.log(target) - torch.log(mean + 1e-8))).sum()


def straight_through_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """One-hot of the argmax in the forward pass, the softmax's gradient in the backward pass. All-zero rows
    (the padding of merged outputs) stay zero."""
    hard = F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)
    hard = hard * (probs.sum(dim=-1, keepdim=True) > 0).to(probs.dtype)
    return hard + probs - probs.detach() if probs.requires_grad else hard


def reconstruction_loss(reconstructed: torch.Tensor, target: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real positions and dimensions; both (B, T, D) (cut to the shorter T)."""
    length = min(reconstructed.shape[1], target.shape[1])
    reconstructed, target, padding_mask = reconstructed[:, :length], target[:, :length], padding_mask[:, :length]
    valid = (~padding_mask).unsqueeze(-1).to(target.dtype)
    return (((reconstructed - target) ** 2) * valid).sum() / (valid.sum() * target.shape[-1]).clamp(min=1.0)


def phone_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (B, T, P) against phone ids (B, L) over real positions (cut to the shorter)."""
    length = min(logits.shape[1], targets.shape[1])
    logits, targets, padding_mask = logits[:, :length], targets[:, :length], padding_mask[:, :length]
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none")
    valid = (~padding_mask).reshape(-1).to(losses.dtype)
    return (losses * valid).sum() / valid.sum().clamp(min=1.0)


def bigram_distribution(sequences: list[np.ndarray], num_phones: int, smoothing: float = 0.5) -> torch.Tensor:
    """(P, P) joint distribution of consecutive phone ids over `sequences` (id arrays), add-`smoothing`."""
    firsts = np.concatenate([np.asarray(s[:-1], dtype=np.int64) for s in sequences] + [np.zeros(0, np.int64)])
    seconds = np.concatenate([np.asarray(s[1:], dtype=np.int64) for s in sequences] + [np.zeros(0, np.int64)])
    counts = np.full((num_phones, num_phones), smoothing, dtype=np.float64)
    np.add.at(counts, (firsts, seconds), 1.0)
    return torch.from_numpy(counts / counts.sum()).float()


def bigram_matching_loss(probs: torch.Tensor, padding_mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target || expected bigrams of the batch): probs (B, R, P) merged phone distributions, target (P, P).

    The batch's bigram distribution is the mean over consecutive real positions of the outer product of
    their distributions; zero when it equals the text's, large when the generator uses pairs text never has
    or misses pairs text uses often.
    """
    pair = (~padding_mask[:, :-1]) & (~padding_mask[:, 1:])  # (B, R-1)
    weight = pair.to(probs.dtype).unsqueeze(-1)
    joint = torch.einsum("bti,btj->ij", probs[:, :-1] * weight, probs[:, 1:])
    joint = joint / pair.sum().clamp(min=1)
    return (target * (torch.log(target) - torch.log(joint + 1e-8))).sum()
