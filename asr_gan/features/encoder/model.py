"""The cross-lingual phone encoder: log-mel frames -> hidden layers -> CTC phone logits.

A strided conv takes 80 log-mel bands at 100 frames/s to `channels` at 50 frames/s (the frame rate of
wav2vec 2.0, which the segmenter and the GAN's settings assume); then `blocks` residual conv blocks
(layer norm, conv, GELU, dropout), and a linear layer to the phones plus the CTC blank (index 0). Layer 0 is
the stem's output and layer i the output of block i; `layers` returns them all, for the feature extraction.
Convolutions only: on a 2-core CPU they train several times faster than a BiLSTM of the same width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class EncoderConfig:
    num_mels: int = 80
    channels: int = 192
    blocks: int = 6
    kernel_size: int = 5
    dropout: float = 0.1
    num_phones: int = 0  # phones without the blank; set from the training corpus's inventory

    def to_dict(self) -> dict:
        return asdict(self)


class ConvBlock(nn.Module):
    """x + dropout(GELU(conv(layer_norm(x)))) over (B, T, C), zero at padding."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C); keep: (B, T, 1) 1.0 at real frames."""
        y = self.conv((self.norm(x) * keep).transpose(1, 2)).transpose(1, 2)
        return (x + self.dropout(nn.functional.gelu(y))) * keep


class PhoneEncoder(nn.Module):
    """Standardised log-mel (B, T, num_mels) at 100 frames/s -> layers (B, ceil(T/2), channels) and CTC logits."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.num_phones < 1:
            raise ValueError("EncoderConfig.num_phones must be set (the phones of the training corpus)")
        self.config = config
        self.stem = nn.Conv1d(config.num_mels, config.channels, kernel_size=3, stride=2, padding=1)
        self.blocks = nn.ModuleList(ConvBlock(config.channels, config.kernel_size, config.dropout)
                                    for _ in range(config.blocks))
        self.final_norm = nn.LayerNorm(config.channels)
        self.output = nn.Linear(config.channels, config.num_phones + 1)

    @staticmethod
    def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
        """Frames out for `lengths` (B,) mel frames in: ceil(T / 2)."""
        return torch.div(lengths + 1, 2, rounding_mode="floor")

    def layers(self, mel: torch.Tensor, lengths: torch.Tensor, upto: int | None = None) -> tuple[list[torch.Tensor],
                                                                                                   torch.Tensor]:
        """Every layer's output up to `upto` (default all): a list of (B, T', C), and the lengths (B,)."""
        out_lengths = self.output_lengths(lengths)
        keep = (torch.arange(self.output_lengths(torch.tensor(mel.shape[1])).item(), device=mel.device)[None, :]
                < out_lengths[:, None]).unsqueeze(-1).to(mel.dtype)
        x = nn.functional.gelu(self.stem(mel.transpose(1, 2)).transpose(1, 2)) * keep
        outputs = [x]
        last = len(self.blocks) if upto is None else upto
        for block in self.blocks[:last]:
            x = block(x, keep)
            outputs.append(x)
        return outputs, out_lengths

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC logits (B, T', P + 1), blank first, and their lengths (B,)."""
        outputs, out_lengths = self.layers(mel, lengths)
        return self.output(self.final_norm(outputs[-1])), out_lengths
