"""The reverse generator: phone distributions (or one-hot phones) -> audio feature sequences.

It closes the two cycles of asr_gan (asr_gan/train/losses.py): audio -> phones -> audio, and
text -> features -> text. Its output runs at the generator's input rate: with a generator of stride s
each phone position is repeated s times first, so `Generator(ReverseGenerator(y))` has y's length again.
"""

from __future__ import annotations

import torch
from torch import nn


class ReverseGenerator(nn.Module):
    """Phones -> features.

    Args:
        num_phones: P, the input size.
        output_dim: D, the feature dimension of the generator's input.
        hidden_dim: width of the phone embedding and the conv blocks.
        hidden_layers: conv blocks (GELU, dropout) between the embedding and the output layer.
        kernel_size: conv kernel ("same" padding, so position t stays position t).
        dropout: dropout after each conv block.
        upsample: repeat each input position this many times (the generator's stride).
        noise_dim: width of a Gaussian noise input concatenated to each position: one phone sequence
            has many renditions as audio, and noise lets the text cycle produce varied features.
    """

    def __init__(self, num_phones: int, output_dim: int, hidden_dim: int = 256, hidden_layers: int = 2,
                 kernel_size: int = 5, dropout: float = 0.1, upsample: int = 1, noise_dim: int = 0) -> None:
        super().__init__()
        self.num_phones, self.output_dim, self.upsample, self.noise_dim = num_phones, output_dim, upsample, noise_dim
        # A linear map of a distribution is the expected phone embedding; of a one-hot, a lookup.
        self.embed = nn.Linear(num_phones + noise_dim, hidden_dim)
        blocks: list[nn.Module] = []
        for _ in range(hidden_layers):
            blocks += [nn.Conv1d(hidden_dim, hidden_dim, kernel_size, padding="same"), nn.GELU(), nn.Dropout(dropout)]
        self.hidden = nn.ModuleList(
            nn.Sequential(*blocks[i:i + 3]) for i in range(0, len(blocks), 3))
        self.output = nn.Linear(hidden_dim, output_dim)

    def forward(self, phones: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of a padded batch of phone sequences.

        Args:
            phones: (B, L, P) phone distributions or one-hot vectors.
            padding_mask: (B, L) bool, True at padding.

        Returns:
            features (B, L * upsample, D) and their padding mask (B, L * upsample).
        """
        if self.upsample > 1:
            phones = phones.repeat_interleave(self.upsample, dim=1)
            padding_mask = padding_mask.repeat_interleave(self.upsample, dim=1)
        if self.noise_dim:
            noise = torch.randn(*phones.shape[:2], self.noise_dim, device=phones.device, dtype=phones.dtype)
            phones = torch.cat([phones, noise], dim=-1)
        keep = (~padding_mask).unsqueeze(1).to(phones.dtype)  # (B, 1, L)
        hidden = self.embed(phones).transpose(1, 2) * keep
        for block in self.hidden:
            hidden = block(hidden) * keep  # padding stays zero, so it never leaks into real positions
        hidden = hidden.transpose(1, 2)
        return self.output(hidden), padding_mask
