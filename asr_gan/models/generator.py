"""The generator (audio encoder): a feature sequence -> per-position phone logits.

Shapes are configurable from one module, from wav2vec-U's generator to a deeper one:

- wav2vec-U (Baevski et al. 2021): dropout on the input, then ONE 1-D conv of kernel 4 from the
  (PCA-512, segment-pooled) features to the phones. `hidden_layers=0` (the default) is exactly that.
- wav2vec-U 2.0 (Liu et al. 2022): batch norm on the input, a residual linear layer, and a conv of
  kernel 9 and stride 3 over FRAMES (no segmentation): `batch_norm=True, residual_linear=True,
  kernel_size=9, stride=3`.
- More capacity for weak features (MFCC): `hidden_layers=N, hidden_dim=H` puts N conv blocks
  (conv, GELU, dropout) of width H before the output conv. Measured on the synthetic TTS corpus with
  MFCC segments, the one-conv generator stayed near 46% PER even trained with labels, so the recipes
  for MFCC default to a deeper generator.

Convolutions are "same"-padded, so with `stride=1` output position t belongs to input position t, which
the cycle losses and the segment -> time mapping of the decoders rely on.
"""

from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """Feature sequence -> phone logits.

    Args:
        input_dim: D, the feature dimension.
        num_phones: P, the output size (the phone inventory, `<SIL>` included).
        kernel_size: kernel of every conv (wav2vec-U: 4).
        stride: stride of the output conv (1 over segments; wav2vec-U 2.0: 3 over frames).
        input_dropout: dropout on the input features (wav2vec-U: 0.1).
        hidden_layers: conv blocks before the output conv (0 = wav2vec-U's single conv).
        hidden_dim: width of the hidden conv blocks.
        hidden_dropout: dropout after each hidden block.
        batch_norm: batch norm on the input (wav2vec-U 2.0).
        residual_linear: add a linear layer of the input to itself before the convs (wav2vec-U 2.0).
        bias: bias in the output conv (wav2vec-U: False).
    """

    def __init__(self, input_dim: int, num_phones: int, kernel_size: int = 4, stride: int = 1,
                 input_dropout: float = 0.1, hidden_layers: int = 0, hidden_dim: int = 256,
                 hidden_dropout: float = 0.1, batch_norm: bool = False, residual_linear: bool = False,
                 bias: bool = False) -> None:
        super().__init__()
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
        self.input_dim, self.num_phones = input_dim, num_phones
        self.kernel_size, self.stride = kernel_size, stride
        self.input_dropout = nn.Dropout(input_dropout)
        self.batch_norm = nn.BatchNorm1d(input_dim) if batch_norm else None
        self.residual = nn.Linear(input_dim, input_dim) if residual_linear else None
        blocks: list[nn.Module] = []
        width = input_dim
        for _ in range(hidden_layers):
            # Padded in forward() ("same" as PyTorch pads it: the extra position of an even kernel on the right).
            blocks.append(nn.Sequential(nn.Conv1d(width, hidden_dim, kernel_size), nn.GELU(),
                                        nn.Dropout(hidden_dropout)))
            width = hidden_dim
        self.hidden = nn.ModuleList(blocks)
        # Asymmetric "same" padding for even kernels and strides > 1 is done by hand in forward().
        self.output = nn.Conv1d(width, num_phones, kernel_size, stride=stride, bias=bias)
        # Standardisation of the input with training-set statistics (set by the trainer, saved in the
        # checkpoint), so a checkpoint maps raw stored features to phones with nothing else.
        self.register_buffer("feature_mean", torch.zeros(input_dim))
        self.register_buffer("feature_std", torch.ones(input_dim))

    def set_feature_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise inputs with these (D,) statistics from now on."""
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp(min=1e-5))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features (B, T, D) -> the standardised features the convs see (and the cycles rebuild)."""
        return (x - self.feature_mean) / self.feature_std

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output positions for inputs of `lengths` (B,): ceil(T / stride)."""
        return torch.div(lengths + self.stride - 1, self.stride, rounding_mode="floor")

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor,
                normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Phone logits of a padded batch.

        Args:
            x: (B, T, D) features: raw stored features, or already standardised ones with `normalized=True`
                (the reverse generator's output in the text cycle).
            padding_mask: (B, T) bool, True at padding.

        Returns:
            logits (B, T', P) with T' = ceil(T / stride), and their padding mask (B, T').
        """
        if not normalized:
            x = self.normalize(x)
        if self.batch_norm is not None:
            # Normalise with statistics of real positions only: padding would drag the mean to zero.
            valid = ~padding_mask
            if self.training:
                values = self.batch_norm(x[valid])
                x = x.masked_scatter(valid.unsqueeze(-1), values)
            else:
                x = self.batch_norm(x.transpose(1, 2)).transpose(1, 2)
        if self.residual is not None:
            x = x + self.residual(x)
        x = self.input_dropout(x)
        keep = (~padding_mask).unsqueeze(1).to(x.dtype)  # (B, 1, T)
        x = x.transpose(1, 2) * keep  # (B, D, T)
        for block in self.hidden:
            # Re-zero padding after each block (bias and GELU make it non-zero), so that a position's output
            # never depends on how much padding follows the utterance.
            left = (self.kernel_size - 1) // 2
            x = block(nn.functional.pad(x, (left, self.kernel_size - 1 - left))) * keep
        total = x.shape[-1]
        out_total = -(-total // self.stride)
        pad = max((out_total - 1) * self.stride + self.kernel_size - total, 0)
        x = nn.functional.pad(x, (pad // 2, pad - pad // 2))
        logits = self.output(x).transpose(1, 2)  # (B, T', P)
        lengths = self.output_lengths((~padding_mask).sum(dim=1))
        out_mask = torch.arange(logits.shape[1], device=x.device)[None, :] >= lengths[:, None]
        return logits, out_mask
