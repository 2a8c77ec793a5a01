"""The discriminator: a sequence of vectors -> one realness score per sequence.

On the phone side (wav2vec-U) it compares the generator's phone distributions with one-hot phone
sequences of unpaired text; the optional feature-domain discriminator of the two-sided cycle GAN is the
same module over audio features. wav2vec-U's discriminator: causal convs of kernel 6 and width 384, the
per-position scores averaged over the real (unpadded) positions.
"""

from __future__ import annotations

import torch
from torch import nn


class CausalConv1d(nn.Conv1d):
    """Conv1d that sees only the current and earlier positions (left padding of kernel - 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, C, T)
        return super().forward(nn.functional.pad(x, (self.kernel_size[0] - 1, 0)))


class Discriminator(nn.Module):
    """Sequence -> score (higher = judged generated; see asr_gan/train/losses.py for the convention).

    Args:
        input_dim: P for phone distributions, D for features.
        hidden_dim: conv width (wav2vec-U: 384).
        kernel_size: conv kernel (wav2vec-U: 6).
        depth: hidden conv blocks between the input and output convs (wav2vec-U: 1).
        dropout: dropout after each hidden block (wav2vec-U: 0).
        causal: left-only context (wav2vec-U: True); False pads both sides.
    """

    def __init__(self, input_dim: int, hidden_dim: int = 384, kernel_size: int = 6, depth: int = 1,
                 dropout: float = 0.0, causal: bool = True) -> None:
        super().__init__()
        self.input_dim = input_dim

        def conv(cin: int, cout: int) -> nn.Module:
            return CausalConv1d(cin, cout, kernel_size) if causal else nn.Conv1d(cin, cout, kernel_size,
                                                                                 padding="same")

        layers: list[nn.Module] = [conv(input_dim, hidden_dim)]
        for _ in range(depth):
            layers += [nn.Dropout(dropout), conv(hidden_dim, hidden_dim), nn.GELU()]
        layers += [conv(hidden_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Scores of a padded batch.

        Args:
            x: (B, T, C) phone distributions / one-hot phones / features.
            padding_mask: (B, T) bool, True at padding; None when nothing is padded.

        Returns:
            (B,) mean of the per-position scores over the real positions.
        """
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        scores = self.net(x.transpose(1, 2)).squeeze(1)  # (B, T)
        if padding_mask is None:
            return scores.mean(dim=1)
        valid = (~padding_mask).to(scores.dtype)
        return (scores * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)
