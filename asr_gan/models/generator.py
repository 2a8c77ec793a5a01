"""The generator (audio encoder): a feature sequence -> per-position phone logits.

Shapes are configurable from one module, from wav2vec-U's generator to a deeper one:

- wav2vec-U (Baevski et al. 2021): dropout on the input, then ONE 1-D conv of kernel 4 from the
  (PCA-512, segment-pooled) features to the phones. `hidden_layers=0` (the default) with
  `conv_padding="wav2vec_u"` is exactly that.
- wav2vec-U 2.0 (Liu et al. 2022): batch norm on the input, a residual linear layer, and a conv of
  kernel 9 and stride 3 over FRAMES (no segmentation): `batch_norm=True, residual_linear=True,
  kernel_size=9, stride=3`.
- More capacity for weak features (MFCC): `hidden_layers=N, hidden_dim=H` puts N conv blocks
  (conv, GELU, dropout) of width H before the output conv. Measured on the synthetic TTS corpus with
  MFCC segments, the one-conv generator stayed near 46% PER even trained with labels, so the recipes
  for MFCC default to a deeper generator.

The hidden convolutions are "same"-padded. The output conv is padded one of two ways (`conv_padding`):

- "wav2vec_u" (the GAN's default, asr_gan/train/config.py): kernel // 2 positions on both sides, as wav2vec-U's
  generator conv. With an even kernel at stride 1 that gives one output more than there are inputs (kernel 4:
  output t reads inputs t-2..t+1), and the padding mask of the outputs grows by that position.
- "same": T outputs for T inputs (stride 1), output t reading inputs t-1..t+2 for kernel 4; what asr_gan used
  before, and the model's own default so that checkpoints saved without the setting rebuild as they trained.

Either way output t (t < T) is taken as input t's, and an extra last output as the last input's: the cycle losses,
the warm start and the row labels cut the outputs to the inputs' length, and the decoders' timelines give the
extra output the last segment's time (asr_gan/decode/timeline.py).
"""

from __future__ import annotations

import torch
from torch import nn

CONV_PADDINGS = ("wav2vec_u", "same")


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
        conv_padding: "wav2vec_u" (kernel // 2 on both sides of the output conv) or "same" (module docstring).
    """

    def __init__(self, input_dim: int, num_phones: int, kernel_size: int = 4, stride: int = 1,
                 input_dropout: float = 0.1, hidden_layers: int = 0, hidden_dim: int = 256,
                 hidden_dropout: float = 0.1, batch_norm: bool = False, residual_linear: bool = False,
                 bias: bool = False, conv_padding: str = "same") -> None:
        super().__init__()
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
        if conv_padding not in CONV_PADDINGS:
            raise ValueError(f"conv_padding {conv_padding!r}: expected one of {CONV_PADDINGS}")
        self.conv_padding = conv_padding
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

    def extra_outputs(self, width: int) -> int:
        """Outputs beyond ceil(width / stride) for a padded input of `width` positions: 1 for wav2vec-U's padding
        with an even kernel where the stride divides the width, else 0."""
        if self.conv_padding == "same" or self.kernel_size % 2 or width % self.stride:
            return 0
        return 1

    def output_lengths(self, lengths: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """Valid output positions (B,) for inputs of `lengths` (B,) padded to `width` (default: the longest).

        ceil(length / stride), plus `extra_outputs(width)`: wav2vec-U's generator marks its outputs' padding by the
        strided input mask shifted right by the extra positions, so position 0 is always valid.
        """
        counts = torch.div(lengths + self.stride - 1, self.stride, rounding_mode="floor")
        return counts + self.extra_outputs(int(lengths.max()) if width is None else width)

    def output_length(self, length: int) -> int:
        """Output positions of one unpadded input of `length` positions."""
        return -(-length // self.stride) + self.extra_outputs(length) if length > 0 else 0

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor,
                normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Phone logits of a padded batch.

        Args:
            x: (B, T, D) features: raw stored features, or already standardised ones with `normalized=True`
                (the reverse generator's output in the text cycle).
            padding_mask: (B, T) bool, True at padding.

        Returns:
            logits (B, T', P) with T' = ceil(T / stride) + extra_outputs(T), and their padding mask (B, T').
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
        if self.conv_padding == "wav2vec_u":
            x = nn.functional.pad(x, (self.kernel_size // 2, self.kernel_size // 2))
        else:
            out_total = -(-total // self.stride)
            pad = max((out_total - 1) * self.stride + self.kernel_size - total, 0)
            x = nn.functional.pad(x, (pad // 2, pad - pad // 2))
        logits = self.output(x).transpose(1, 2)  # (B, T', P)
        lengths = self.output_lengths((~padding_mask).sum(dim=1), total)
        out_mask = torch.arange(logits.shape[1], device=x.device)[None, :] >= lengths[:, None]
        return logits, out_mask
