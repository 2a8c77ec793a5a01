"""Frame-level CTC phone models: a BiLSTM, a conformer (torchaudio blocks), or the GAN's generator.

Every model maps features to per-frame scores over the phones plus one CTC blank:

    x (B, T, D), padding_mask (B, T) bool, True = padding  ->  logits (B, T', P + 1), padding_mask (B, T')

The blank is the LAST output (index P), so outputs 0..P-1 keep the order of `text/phones.txt` and a
CTC model's phone scores line up with the GAN generator's. `<SIL>` stays an ordinary phone, as in the
references, so the topline and the GAN are scored on the same symbols.

Inputs are normalised inside the model with the mean / std of the training features (stored as
buffers), so a checkpoint carries everything it needs to score new features.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

MODEL_KINDS = ("bilstm", "conformer", "generator")


class BiLSTMEncoder(nn.Module):
    """Input projection, a stack of bidirectional LSTMs, a linear output layer.

    Args:
        input_dim: D, feature dimension.
        num_outputs: phones + blank.
    """

    def __init__(self, input_dim: int, num_outputs: int, hidden_dim: int = 256, num_layers: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * hidden_dim, num_outputs)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), padding_mask (B, T) -> logits (B, T, num_outputs), padding_mask (B, T)."""
        lengths = (~padding_mask).sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=x.shape[1])
        return self.output(self.dropout(hidden)), padding_mask


class ConformerEncoder(nn.Module):
    """Linear projection to `model_dim`, torchaudio's Conformer blocks, a linear output layer."""

    def __init__(self, input_dim: int, num_outputs: int, model_dim: int = 144, num_heads: int = 4,
                 ffn_dim: int = 576, num_layers: int = 4, kernel_size: int = 15, dropout: float = 0.1) -> None:
        super().__init__()
        from torchaudio.models import Conformer

        self.project = nn.Linear(input_dim, model_dim)
        self.conformer = Conformer(input_dim=model_dim, num_heads=num_heads, ffn_dim=ffn_dim, num_layers=num_layers,
                                   depthwise_conv_kernel_size=kernel_size, dropout=dropout)
        self.output = nn.Linear(model_dim, num_outputs)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), padding_mask (B, T) -> logits (B, T, num_outputs), padding_mask (B, T)."""
        lengths = (~padding_mask).sum(dim=1).clamp(min=1)
        hidden, _ = self.conformer(self.project(x), lengths)
        return self.output(hidden), padding_mask


def build_generator_encoder(input_dim: int, num_outputs: int, **generator_kwargs: Any) -> nn.Module:
    """The GAN's `Generator` with one extra output for the blank (same architecture as the GAN run).

    Keyword arguments the Generator does not accept are an error naming them, so a GAN config whose
    generator settings drift from the Generator's signature fails loudly instead of silently differing.
    """
    from asr_gan.models.generator import Generator

    accepted = set(inspect.signature(Generator.__init__).parameters) - {"self", "input_dim", "num_phones"}
    unknown = set(generator_kwargs) - accepted
    if unknown:
        raise ValueError(f"Generator takes no {sorted(unknown)}; it accepts {sorted(accepted)}")
    return Generator(input_dim, num_outputs, **generator_kwargs)


class CTCPhoneModel(nn.Module):
    """Feature normalisation + an encoder producing phone-and-blank logits.

    Attributes:
        kind: "bilstm", "conformer" or "generator".
        num_phones: P; the blank is output index P.
        encoder_kwargs: the encoder's settings, saved in checkpoints to rebuild it.
    """

    def __init__(self, kind: str, input_dim: int, num_phones: int, encoder_kwargs: dict[str, Any] | None = None,
                 feature_mean: torch.Tensor | None = None, feature_std: torch.Tensor | None = None) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown CTC model kind {kind!r}; choose one of {MODEL_KINDS}")
        self.kind, self.input_dim, self.num_phones = kind, input_dim, num_phones
        self.encoder_kwargs = dict(encoder_kwargs or {})
        builders = {"bilstm": BiLSTMEncoder, "conformer": ConformerEncoder, "generator": build_generator_encoder}
        self.encoder = builders[kind](input_dim, num_phones + 1, **self.encoder_kwargs)
        self.register_buffer("feature_mean", torch.zeros(input_dim) if feature_mean is None else feature_mean.float())
        self.register_buffer("feature_std", torch.ones(input_dim) if feature_std is None else feature_std.float())

    @property
    def blank(self) -> int:
        return self.num_phones

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D) raw features, padding_mask (B, T) True = pad -> logits (B, T', P + 1), padding_mask (B, T')."""
        x = (x - self.feature_mean) / self.feature_std
        x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        return self.encoder(x, padding_mask)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this model (besides the state dict)."""
        return {"kind": self.kind, "input_dim": self.input_dim, "num_phones": self.num_phones,
                "encoder_kwargs": self.encoder_kwargs}

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> "CTCPhoneModel":
        return cls(description["kind"], description["input_dim"], description["num_phones"],
                   description.get("encoder_kwargs"))
